//! The thread-safe door to traffic engineering for the operator surface (REST API, SIGHUP
//! reload): commands are validated at once, so the caller gets a typed error, and applied
//! by the slow path at its next iteration; the view is the snapshot of its last step.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{TeError, TePolicy, TePolicyError, TeView};

/// A command for the slow path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TeCommand {
    SetPolicy(TePolicy),
    Drain(u16),
    Undrain(u16),
}

#[derive(Debug, Default)]
struct Shared {
    commands: Vec<TeCommand>,
    /// Drained providers as the accepted commands leave them.
    drained: Vec<u16>,
    view: Option<TeView>,
}

/// A cloneable handle on the traffic engineering of a running slow path.
#[derive(Debug, Clone)]
pub struct TeHandle {
    providers: Arc<[u16]>,
    shared: Arc<Mutex<Shared>>,
}

impl TeHandle {
    pub(crate) fn new(providers: Vec<u16>) -> Self {
        Self {
            providers: providers.into(),
            shared: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic elsewhere while holding the lock leaves plain data: still usable.
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Configured provider ids.
    pub fn providers(&self) -> &[u16] {
        &self.providers
    }

    /// Validates `policy` and queues it (`PUT /v1/te/policy`, reload).
    pub fn set_policy(&self, policy: TePolicy) -> Result<(), TePolicyError> {
        policy.validate(&self.providers)?;
        self.lock().commands.push(TeCommand::SetPolicy(policy));
        Ok(())
    }

    /// Queues a drain of provider `id` (`POST /v1/providers/{id}/drain`).
    pub fn drain(&self, id: u16) -> Result<(), TeError> {
        if !self.providers.contains(&id) {
            return Err(TeError::UnknownProvider(id));
        }
        let mut s = self.lock();
        if !self
            .providers
            .iter()
            .any(|p| *p != id && !s.drained.contains(p))
        {
            return Err(TeError::LastProvider(id));
        }
        if !s.drained.contains(&id) {
            s.drained.push(id);
        }
        s.commands.push(TeCommand::Drain(id));
        Ok(())
    }

    /// Queues an undrain of provider `id`.
    pub fn undrain(&self, id: u16) -> Result<(), TeError> {
        if !self.providers.contains(&id) {
            return Err(TeError::UnknownProvider(id));
        }
        let mut s = self.lock();
        s.drained.retain(|p| *p != id);
        s.commands.push(TeCommand::Undrain(id));
        Ok(())
    }

    /// The slow path's latest snapshot (`None` before its first step).
    pub fn view(&self) -> Option<TeView> {
        self.lock().view.clone()
    }

    /// Commands queued since the last call (slow path).
    pub(crate) fn take_commands(&self) -> Vec<TeCommand> {
        std::mem::take(&mut self.lock().commands)
    }

    /// Publishes a snapshot (slow path).
    pub(crate) fn publish(&self, view: TeView) {
        self.lock().view = Some(view);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_validated_then_queued() {
        let h = TeHandle::new(vec![1, 2]);
        let bad = TePolicy {
            mode: super::super::SplitMode::Weighted,
            ..TePolicy::default()
        };
        assert_eq!(h.set_policy(bad), Err(TePolicyError::NoWeight));
        assert_eq!(h.drain(3), Err(TeError::UnknownProvider(3)));
        assert_eq!(h.undrain(3), Err(TeError::UnknownProvider(3)));
        h.drain(1).unwrap();
        assert_eq!(h.drain(2), Err(TeError::LastProvider(2)));
        h.undrain(1).unwrap();
        h.drain(2).unwrap();
        h.set_policy(TePolicy::default()).unwrap();
        assert_eq!(
            h.take_commands(),
            vec![
                TeCommand::Drain(1),
                TeCommand::Undrain(1),
                TeCommand::Drain(2),
                TeCommand::SetPolicy(TePolicy::default())
            ]
        );
        assert!(h.take_commands().is_empty());
        assert_eq!(h.view(), None);
    }
}
