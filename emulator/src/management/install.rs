//! `install_code` in every mode (install, reinstall, upgrade), atomically: on failure nothing
//! changes.

use super::*;

impl Inner {
    /// `install_code` in any mode; on failure nothing changes.
    #[allow(clippy::too_many_arguments)]
    pub fn install(
        &mut self,
        caller: Principal,
        id: Principal,
        mode: mgmt::CanisterInstallMode,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        origin: &Origin,
        sender_version: Option<u64>,
    ) -> Result<(), RejectResponse> {
        self.controlled(caller, id, "install_code")?;
        if self.faults.fail_install_code > 0 {
            self.faults.fail_install_code -= 1;
            return Err(reject(
                ErrorCode::CanisterInstallCodeRateLimited,
                "injected fault: install_code fails",
            ));
        }
        let module = engine::compile(&wasm).map_err(|e| {
            reject(
                ErrorCode::CanisterInvalidWasm,
                format!("Error from Canister {id}: Canister's Wasm module is not valid: {e}"),
            )
        })?;
        let mut c = self.canisters.remove(&id).unwrap();
        let result = self.install_into(&mut c, caller, module, &mode, arg);
        let ok = result.is_ok();
        let hash = c.module_hash;
        self.canisters.insert(id, c);
        result?;
        if ok {
            let m = match mode {
                mgmt::CanisterInstallMode::Install => mgmt::CodeDeploymentMode::Install,
                mgmt::CanisterInstallMode::Reinstall => mgmt::CodeDeploymentMode::Reinstall,
                mgmt::CanisterInstallMode::Upgrade(_) => mgmt::CodeDeploymentMode::Upgrade,
            };
            let d = mgmt::ChangeDetails::CodeDeployment(mgmt::CodeDeploymentRecord {
                mode: m,
                module_hash: hash.map(|h| h.to_vec()).unwrap_or_default(),
            });
            self.push_change(id, caller, origin, sender_version, d);
        }
        Ok(())
    }

    fn install_into(
        &mut self,
        c: &mut Canister,
        caller: Principal,
        module: std::sync::Arc<engine::CompiledModule>,
        mode: &mgmt::CanisterInstallMode,
        arg: Vec<u8>,
    ) -> Result<(), RejectResponse> {
        let id = c.id;
        let limit = self.config.install_instruction_limit;
        let upgrade = matches!(mode, mgmt::CanisterInstallMode::Upgrade(_));
        match mode {
            mgmt::CanisterInstallMode::Install if c.instance.is_some() => {
                return Err(reject(
                    ErrorCode::CanisterNonEmpty,
                    format!(
                        "Canister {id} cannot be installed because the canister is not empty. Try installing with mode='reinstall' instead."
                    ),
                ));
            }
            mgmt::CanisterInstallMode::Upgrade(_) if c.instance.is_none() => {
                return Err(reject(
                    ErrorCode::CanisterWasmModuleNotFound,
                    format!(
                        "Error from Canister {id}: Attempted to upgrade a canister that has no Wasm module."
                    ),
                ));
            }
            _ => {}
        }
        let skip_pre = matches!(mode, mgmt::CanisterInstallMode::Upgrade(Some(f)) if f.skip_pre_upgrade == Some(true));
        let mut used = 0u64;
        let mut stable = std::mem::take(&mut c.stable);
        stable.begin();
        let mut prints = Vec::new();
        if upgrade && !skip_pre {
            let mut old = c.instance.take().unwrap();
            if old.module().exports("canister_pre_upgrade") {
                let ex = self.run_hook(
                    c,
                    &mut old,
                    ApiType::PreUpgrade,
                    "canister_pre_upgrade",
                    Vec::new(),
                    caller,
                    limit,
                    stable,
                );
                let _ = old.rollback();
                let mut msg = ex.msg;
                prints.extend(std::mem::take(&mut msg.debug_prints));
                stable = msg.stable;
                used += ex.instructions;
                if let Some(t) = ex.trap {
                    stable.rollback();
                    c.stable = stable;
                    c.instance = Some(old);
                    self.record_prints_into(c, prints);
                    let mut r = trap_reject(id, &t);
                    r.reject_message = format!("{} (in canister_pre_upgrade)", r.reject_message);
                    return Err(r);
                }
            }
            c.instance = Some(old);
        }
        let old_stable = if upgrade {
            None
        } else {
            Some(std::mem::take(&mut stable))
        };
        let mut inst = CanisterInstance::new(module.clone()).map_err(|e| {
            reject(
                ErrorCode::CanisterInvalidWasm,
                format!("Error from Canister {id}: {e}"),
            )
        })?;
        let (hook, api) = if upgrade {
            ("canister_post_upgrade", ApiType::PostUpgrade)
        } else {
            ("canister_init", ApiType::Init)
        };
        let mut timer = 0;
        let mut timer_changed = false;
        let mut certified = None;
        let mut balance = c.balance;
        if module.exports(hook) {
            let saved_timer = c.global_timer;
            c.global_timer = 0;
            let ex = self.run_hook(
                c,
                &mut inst,
                api,
                hook,
                arg,
                caller,
                limit.saturating_sub(used),
                stable,
            );
            c.global_timer = saved_timer;
            let mut msg = ex.msg;
            prints.extend(std::mem::take(&mut msg.debug_prints));
            stable = msg.stable;
            used += ex.instructions;
            if let Some(t) = ex.trap {
                match old_stable {
                    Some(s) => c.stable = s,
                    None => {
                        stable.rollback();
                        c.stable = stable;
                    }
                }
                self.record_prints_into(c, prints);
                let mut r = trap_reject(id, &t);
                r.reject_message = format!("{} (in {hook})", r.reject_message);
                return Err(r);
            }
            timer = msg.global_timer;
            timer_changed = msg.global_timer_changed;
            certified = msg.certified_data.take();
            balance = msg.balance;
        }
        inst.commit();
        stable.commit();
        c.stable = stable;
        c.instance = Some(inst);
        c.module_hash = Some(module.hash);
        c.version += 1;
        c.code_generation += 1;
        c.global_timer = if timer_changed { timer } else { 0 };
        if !upgrade {
            c.certified_data.clear();
        }
        if let Some(d) = certified {
            c.certified_data = d;
        }
        c.balance = balance.saturating_sub(self.config.execution_cost(used));
        let st = self.stats.entry(id).or_default();
        st.method(hook)
            .add_execution(used, self.config.execution_cost(used), false);
        st.total
            .add_execution(used, self.config.execution_cost(used), false);
        self.record_prints_into(c, prints);
        Ok(())
    }
}
