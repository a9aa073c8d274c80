//! Memories: added, read, paged, updated and deleted, with the references to the blobs they attach.

use super::*;

impl<M: StableMemory> CapsuleStore<M> {
    pub fn add_memory(&mut self, ctx: &Ctx, input: MemoryInput) -> CapsuleResult<Memory> {
        let mut rec = self.writable(ctx)?;
        if rec.memory_count >= self.limits.max_memories {
            return Err(limit("memories", self.limits.max_memories));
        }
        self.check_memory_fields(
            rec.owner,
            &input.title,
            &input.description,
            &input.tags,
            &input.blobs,
            input.encryption.as_ref(),
        )?;
        let memory = Memory {
            id: rec.next_memory_id,
            title: input.title,
            description: input.description,
            tags: input.tags,
            kind: input.kind,
            created_at: ctx.now,
            updated_at: ctx.now,
            blobs: input.blobs,
            encryption: input.encryption,
        };
        for b in &memory.blobs {
            self.attach_blob(rec.owner, &b.hash);
        }
        rec.next_memory_id += 1;
        rec.memory_count += 1;
        rec.updated_at = ctx.now;
        self.memories.put(rec.owner, &memory);
        self.save(rec);
        Ok(memory)
    }

    pub fn get_memory(&self, ctx: &Ctx, id: MemoryId) -> CapsuleResult<Memory> {
        let rec = self.readable(ctx)?;
        self.memories
            .get(rec.owner, id)
            .ok_or(Error::MemoryNotFound { id })
    }

    pub fn list_memories(&self, ctx: &Ctx, req: MemoryPageRequest) -> CapsuleResult<MemoryPage> {
        let rec = self.readable(ctx)?;
        let limit = self.check_page(req.limit)?;
        let (items, next) = paged(
            self.memories_after(rec.owner, req.start_after, limit + 1),
            limit,
            |m| m.id,
        );
        Ok(MemoryPage { items, next })
    }

    pub fn update_memory(
        &mut self,
        ctx: &Ctx,
        id: MemoryId,
        update: MemoryUpdate,
    ) -> CapsuleResult<Memory> {
        let mut rec = self.writable(ctx)?;
        let old = self
            .memories
            .get(rec.owner, id)
            .ok_or(Error::MemoryNotFound { id })?;
        let mut new = old.clone();
        if let Some(v) = update.title {
            new.title = v;
        }
        if let Some(v) = update.description {
            new.description = v;
        }
        if let Some(v) = update.tags {
            new.tags = v;
        }
        if let Some(v) = update.kind {
            new.kind = v;
        }
        if let Some(v) = update.blobs {
            new.blobs = v;
        }
        if let Some(v) = update.encryption {
            new.encryption = v;
        }
        self.check_memory_fields(
            rec.owner,
            &new.title,
            &new.description,
            &new.tags,
            &new.blobs,
            new.encryption.as_ref(),
        )?;
        // Attach the new references before detaching the old ones, so a blob kept by the
        // update is never released in between.
        for b in &new.blobs {
            self.attach_blob(rec.owner, &b.hash);
        }
        for b in &old.blobs {
            self.detach_blob(&mut rec, &b.hash);
        }
        new.updated_at = ctx.now;
        rec.updated_at = ctx.now;
        self.memories.put(rec.owner, &new);
        self.save(rec);
        Ok(new)
    }

    pub fn delete_memory(&mut self, ctx: &Ctx, id: MemoryId) -> CapsuleResult<()> {
        let mut rec = self.writable(ctx)?;
        let old = self
            .memories
            .remove(rec.owner, id)
            .ok_or(Error::MemoryNotFound { id })?;
        for b in &old.blobs {
            self.detach_blob(&mut rec, &b.hash);
        }
        rec.memory_count -= 1;
        rec.updated_at = ctx.now;
        self.save(rec);
        Ok(())
    }
}
