//! Creations held in the middle of their manifest under the backend of an earlier layout
//! (emulator only: delivery delays, injected rejects and message statistics).

use super::*;

/// A creation begun under the backend of an earlier layout and held in the middle of its
/// manifest ([`OldLayout::hold_mid_manifest`]; emulator only).
#[derive(Debug, Clone, Copy)]
pub struct MidManifest {
    /// The layout of the backend it began under, whose personal module its canister runs.
    pub old: OldLayout,
    pub who: Principal,
    /// Its personal canister.
    pub canister: Principal,
    pub migration: u64,
    /// The `page_method` requests the backend had received when the import was held.
    pub pulled: u64,
}

impl OldLayout {
    /// Begins `who`'s creation on the backend of `w` (still of this layout) and runs it until
    /// its personal canister has pulled [`STAGED_PAGES`] pages of its manifest through
    /// `page_method`, and holds it there: the next page's request is rejected
    /// (`SYS_TRANSIENT`), so the importer waits out its backoff with no call in flight.
    pub fn hold_mid_manifest(&self, w: &World, who: Principal) -> MidManifest {
        use emulator::RejectCode;
        use migration::protocol::ImportPhase;
        use std::time::Duration;

        w.create_personal_canister(who).unwrap();
        w.run_until_state(who, CreationState::Importing);
        let canister = w.status(who).unwrap().canister_id.unwrap();
        let pulled = || calls_received(w, w.backend, self.page_method);
        let at_importing = pulled();
        // Requests to the backend wait a round each, so one page is pulled per round (a message
        // between canisters is otherwise delivered within the round that sent it).
        w.emu().delay_delivery(w.backend, 1);
        for _ in 0..300 {
            if pulled() >= at_importing + STAGED_PAGES {
                break;
            }
            w.ic.advance_time(Duration::from_millis(200));
            w.ic.tick();
        }
        assert_eq!(
            pulled(),
            at_importing + STAGED_PAGES,
            "pages pulled through {} while importing",
            self.page_method
        );
        // The request for the next page, queued for the next round, is rejected on delivery.
        w.emu().reject_next(
            w.backend,
            Some(self.page_method),
            1,
            RejectCode::SysTransient,
            "held mid-manifest by the test",
        );
        w.emu().delay_delivery(w.backend, 0);
        w.ic.tick();
        w.ic.tick();
        assert_eq!(pulled(), at_importing + STAGED_PAGES);
        assert!(
            w.emu()
                .trace_string()
                .contains("held mid-manifest by the test"),
            "the next page's request was rejected"
        );
        let status = import_status(w, canister, who);
        assert_eq!(
            (status.phase, status.error),
            (ImportPhase::Manifest, None),
            "the import waits inside its manifest"
        );
        // The canister runs the personal module the fixture holds (the backend of an earlier
        // layout embeds the module of its own build).
        assert_eq!(
            installed_module_hash(w, canister, who),
            module_hash_of(&fixture(self.personal))
        );
        MidManifest {
            old: *self,
            who,
            canister,
            migration: w.status(who).unwrap().migration_id,
            pulled: pulled(),
        }
    }
}

impl MidManifest {
    /// The manifest of the creation as the backend serves it, verified: more pages than the
    /// importer staged before it was held.
    pub fn export(&self, w: &World) -> VerifiedManifest {
        let export = verified_export(w, self.migration);
        assert!(export.pages as u64 > STAGED_PAGES, "{export:?}");
        export
    }

    /// Upgrades the personal canister to the current module, as its owner (a controller until
    /// the handoff).
    pub fn upgrade_personal(&self, w: &World) {
        self.old.upgrade_personal(w, self.canister, self.who);
    }

    /// Runs the creation to its end: `Completed`, with the canister it was held with.
    pub fn completed(&self, w: &World) -> CreationRecord {
        let done = crate::completed(w, self.who);
        assert_eq!(done.canister_id, Some(self.canister));
        done
    }

    /// The creation completes with its importer of the old layout: `check_done` checks its
    /// record; the pages not staged before the hold (`export` has them all) were pulled through
    /// the old `page_method` and none through the other page method; at the handoff the backend
    /// upgraded the canister to the module it ships now (not the old one) and handed it to
    /// `who` alone; the canister holds what the backend held (`before`, `blobs`) and serves
    /// `export`'s pages. Returns the record and the manifest the canister serves.
    pub fn completes_with_the_old_importer(
        &self,
        w: &World,
        export: &VerifiedManifest,
        before: &Everything,
        blobs: &[BlobDescriptor],
        check_done: impl FnOnce(&CreationRecord),
    ) -> (CreationRecord, VerifiedManifest) {
        const PAGE_METHODS: [&str; 2] = ["export_manifest_page", "export_raw_manifest_page"];
        let done = self.completed(w);
        check_done(&done);
        assert_eq!(
            calls_received(w, w.backend, self.old.page_method) - self.pulled,
            export.pages as u64 - STAGED_PAGES,
            "the pages layout {} did not stage, pulled from the upgraded backend",
            self.old.layout
        );
        for other in PAGE_METHODS.iter().filter(|m| **m != self.old.page_method) {
            assert_eq!(calls_received(w, w.backend, other), 0, "{other}");
        }
        assert_eq!(
            installed_module_hash(w, self.canister, self.who),
            shipped_personal_hash(w)
        );
        assert_ne!(
            shipped_personal_hash(w),
            module_hash_of(&fixture(self.old.personal))
        );
        assert_eq!(w.ic.get_controllers(self.canister), vec![self.who]);
        assert_moved_intact(w, self.canister, self.who, before);
        assert_blobs_readable(w, self.canister, self.who, blobs);
        let manifest = verified_personal_manifest(w, self.canister, self.who);
        assert_eq!(&manifest, export);
        (done, manifest)
    }

    /// The personal canister runs the module the backend ships and holds what the backend held
    /// (`before`, `blobs`).
    pub fn assert_runs_the_shipped_module_holding(
        &self,
        w: &World,
        before: &Everything,
        blobs: &[BlobDescriptor],
    ) {
        assert_eq!(
            installed_module_hash(w, self.canister, self.who),
            shipped_personal_hash(w)
        );
        assert_moved_intact(w, self.canister, self.who, before);
        assert_blobs_readable(w, self.canister, self.who, blobs);
    }

    /// The old personal module is refused by the upgraded canister (as its owner); the capsule
    /// and the manifest it serves (`manifest`) stay as they were.
    pub fn assert_old_module_refused(&self, w: &World, manifest: &VerifiedManifest) {
        self.old
            .assert_personal_refused(w, self.canister, self.who, self.who);
        assert_eq!(
            &verified_personal_manifest(w, self.canister, self.who),
            manifest
        );
    }
}
