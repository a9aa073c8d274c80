//! Connections: added, paged, updated and removed.

use super::*;

impl<M: StableMemory> CapsuleStore<M> {
    pub fn add_connection(
        &mut self,
        ctx: &Ctx,
        input: ConnectionInput,
    ) -> CapsuleResult<Connection> {
        let mut rec = self.writable(ctx)?;
        if input.peer == rec.owner {
            return Err(Error::SelfConnection);
        }
        if input.peer == Principal::anonymous() {
            return Err(Error::Anonymous);
        }
        let key = (rec.owner, input.peer);
        if self.connections.contains_key(&key) {
            return Err(Error::ConnectionExists { peer: input.peer });
        }
        if rec.connection_count >= self.limits.max_connections {
            return Err(limit("connections", self.limits.max_connections));
        }
        check_len(
            "relationship",
            &input.relationship,
            self.limits.max_relationship_len,
        )?;
        let conn = Connection {
            peer: input.peer,
            relationship: input.relationship,
            status: input.status,
            created_at: ctx.now,
            updated_at: ctx.now,
        };
        self.connections.insert(key, Packed(conn.clone()));
        rec.connection_count += 1;
        rec.updated_at = ctx.now;
        self.save(rec);
        Ok(conn)
    }

    pub fn list_connections(
        &self,
        ctx: &Ctx,
        req: ConnectionPageRequest,
    ) -> CapsuleResult<ConnectionPage> {
        let rec = self.readable(ctx)?;
        let limit = self.check_page(req.limit)?;
        let owner = rec.owner;
        let start = req
            .start_after
            .unwrap_or_else(Principal::management_canister);
        let items: Vec<Connection> = self
            .connections
            .range((owner, start)..)
            .take_while(|entry| entry.key().0 == owner)
            .map(|entry| entry.value().0)
            .filter(|c| req.start_after != Some(c.peer))
            .take(limit + 1)
            .collect();
        let (items, next) = paged(items, limit, |c| c.peer);
        Ok(ConnectionPage { items, next })
    }

    pub fn update_connection(
        &mut self,
        ctx: &Ctx,
        peer: Principal,
        update: ConnectionUpdate,
    ) -> CapsuleResult<Connection> {
        let mut rec = self.writable(ctx)?;
        let key = (rec.owner, peer);
        let mut conn = self
            .connections
            .get(&key)
            .map(|c| c.0)
            .ok_or(Error::ConnectionNotFound { peer })?;
        if let Some(r) = update.relationship {
            check_len("relationship", &r, self.limits.max_relationship_len)?;
            conn.relationship = r;
        }
        if let Some(s) = update.status {
            conn.status = s;
        }
        conn.updated_at = ctx.now;
        self.connections.insert(key, Packed(conn.clone()));
        rec.updated_at = ctx.now;
        self.save(rec);
        Ok(conn)
    }

    pub fn remove_connection(&mut self, ctx: &Ctx, peer: Principal) -> CapsuleResult<()> {
        let mut rec = self.writable(ctx)?;
        self.connections
            .remove(&(rec.owner, peer))
            .ok_or(Error::ConnectionNotFound { peer })?;
        rec.connection_count -= 1;
        rec.updated_at = ctx.now;
        self.save(rec);
        Ok(())
    }
}
