//! Validation of what callers send, before anything is written.

use super::*;

impl<M: StableMemory> CapsuleStore<M> {
    pub(super) fn check_page(&self, limit: u32) -> CapsuleResult<usize> {
        if limit == 0 || limit > self.limits.max_page {
            return Err(Error::InvalidPageLimit {
                limit,
                max: self.limits.max_page,
            });
        }
        Ok(limit as usize)
    }

    pub(super) fn check_capsule_fields(
        &self,
        name: &str,
        bio: &str,
        settings: &CapsuleSettings,
    ) -> CapsuleResult<()> {
        check_len("name", name, self.limits.max_name_len)?;
        check_len("bio", bio, self.limits.max_bio_len)?;
        check_len(
            "settings.locale",
            &settings.locale,
            self.limits.max_locale_len,
        )
    }

    pub(super) fn check_memory_fields(
        &self,
        owner: Principal,
        title: &str,
        description: &str,
        tags: &[String],
        blobs: &[BlobRef],
        encryption: Option<&EncryptionEnvelope>,
    ) -> CapsuleResult<()> {
        let l = &self.limits;
        check_len("title", title, l.max_title_len)?;
        check_len("description", description, l.max_description_len)?;
        if tags.len() as u64 > l.max_tags {
            return Err(limit("tags on a memory", l.max_tags));
        }
        for t in tags {
            check_len("tag", t, l.max_tag_len)?;
        }
        if blobs.len() as u64 > l.max_blobs_per_memory {
            return Err(limit("blobs on a memory", l.max_blobs_per_memory));
        }
        for b in blobs {
            check_len("mime_type", &b.mime_type, l.max_mime_len)?;
            self.held(owner, &b.hash)?;
            let actual = self.blobs.blob(&b.hash).map_or(0, |i| i.size);
            if actual != b.size {
                return Err(Error::BlobSizeMismatch {
                    hash: to_hex(&b.hash),
                    declared: b.size,
                    actual,
                });
            }
        }
        if let Some(e) = encryption {
            check_len("encryption.scheme", &e.scheme, l.max_scheme_len)?;
            if e.wrapped_key.len() as u64 > l.max_wrapped_key_len {
                return Err(Error::FieldTooLong {
                    field: "encryption.wrapped_key".into(),
                    len: e.wrapped_key.len() as u64,
                    max: l.max_wrapped_key_len,
                });
            }
        }
        Ok(())
    }
}

pub(super) fn check_len(field: &str, value: &str, max: u64) -> CapsuleResult<()> {
    let len = value.len() as u64;
    if len > max {
        return Err(Error::FieldTooLong {
            field: field.into(),
            len,
            max,
        });
    }
    Ok(())
}

pub(super) fn limit(what: &str, max: u64) -> Error {
    Error::LimitReached {
        what: what.into(),
        max,
    }
}

/// Upload errors that would reveal another caller's session are reported as unknown.
pub(super) fn upload_error(e: blobstore::BlobError, upload: UploadId) -> Error {
    match e {
        blobstore::BlobError::UnknownUpload { .. }
        | blobstore::BlobError::NotUploadOwner { .. } => Error::UnknownUpload { upload },
        other => Error::Blob(other),
    }
}

/// A page of at most `limit` of `items` (read as `limit + 1`, in order) and, when more follow,
/// the key of its last item to continue after.
pub(super) fn paged<T, K>(
    mut items: Vec<T>,
    limit: usize,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, Option<K>) {
    if items.len() <= limit {
        return (items, None);
    }
    items.truncate(limit);
    let next = items.last().map(key);
    (items, next)
}
