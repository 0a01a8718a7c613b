//! Read access to a batch's facts, for the projection: either a stored [`BatchAggregate`] or a
//! `Draft` of the next one — the stored aggregate plus the few records one event changes.
//!
//! The rules used to clone the whole aggregate to compute the next state, which made every
//! record's cost grow with the size of its batch (every essay copied, then compared with the
//! original). A draft copies only what it changes (copy on write), and its plan lists only
//! those records.

use crate::contracts::PhaseName;
use crate::model::{BatchAggregate, BatchRoot, CjJobRecord, EssayRecord, PhaseOutcomeRecord};
use crate::plan::{OutboxMessage, Plan, StateChange};
use std::borrow::Borrow;
use std::collections::btree_map::{self, BTreeMap};
use std::iter::Peekable;

/// What the projection reads. Iteration orders are those of the aggregate's maps (by key).
pub trait BatchFacts {
    fn root(&self) -> &BatchRoot;
    fn essay(&self, essay_id: &str) -> Option<&EssayRecord>;
    /// `(essay_id, essay)`, sorted by id.
    fn essays(&self) -> impl Iterator<Item = (&str, &EssayRecord)>;
    fn phase(&self, phase: PhaseName) -> Option<&PhaseOutcomeRecord>;
    /// `(phase, outcome)`, in pipeline order.
    fn phases(&self) -> impl Iterator<Item = (PhaseName, &PhaseOutcomeRecord)>;
    /// `(job_id, job)`, sorted by job id.
    fn cj_jobs(&self) -> impl Iterator<Item = (&str, &CjJobRecord)>;
    fn has_cj_jobs(&self) -> bool;
}

impl BatchFacts for BatchAggregate {
    fn root(&self) -> &BatchRoot {
        &self.root
    }
    fn essay(&self, essay_id: &str) -> Option<&EssayRecord> {
        self.essays.get(essay_id)
    }
    fn essays(&self) -> impl Iterator<Item = (&str, &EssayRecord)> {
        self.essays.iter().map(|(id, e)| (id.as_str(), e))
    }
    fn phase(&self, phase: PhaseName) -> Option<&PhaseOutcomeRecord> {
        self.phases.get(&phase)
    }
    fn phases(&self) -> impl Iterator<Item = (PhaseName, &PhaseOutcomeRecord)> {
        self.phases.iter().map(|(p, o)| (*p, o))
    }
    fn cj_jobs(&self) -> impl Iterator<Item = (&str, &CjJobRecord)> {
        self.cj_jobs.iter().map(|(id, j)| (id.as_str(), j))
    }
    fn has_cj_jobs(&self) -> bool {
        !self.cj_jobs.is_empty()
    }
}

/// A map of the stored aggregate with copy-on-write changes on top.
pub(crate) struct Overlay<'a, K, V> {
    base: &'a BTreeMap<K, V>,
    changed: BTreeMap<K, V>,
}

impl<'a, K: Ord + Clone, V: Clone + PartialEq> Overlay<'a, K, V> {
    fn new(base: &'a BTreeMap<K, V>) -> Self {
        Overlay {
            base,
            changed: BTreeMap::new(),
        }
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.changed.get(key).or_else(|| self.base.get(key))
    }

    pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.changed.contains_key(key) || self.base.contains_key(key)
    }

    /// The entry to change: the stored value copied into the overlay on first access.
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        if !self.changed.contains_key(key) {
            let stored = self.base.get(key)?.clone();
            self.changed.insert(key.to_owned(), stored);
        }
        self.changed.get_mut(key)
    }

    /// [`Overlay::get_mut`], inserting `make()` when the key is neither changed nor stored.
    pub(crate) fn get_or_insert_with<Q>(&mut self, key: &Q, make: impl FnOnce() -> V) -> &mut V
    where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        let base = self.base;
        self.changed
            .entry(key.to_owned())
            .or_insert_with(|| base.get(key).cloned().unwrap_or_else(make))
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        self.changed.insert(key, value);
    }

    /// Stored and changed entries merged, by key; a changed entry replaces the stored one.
    pub(crate) fn iter(&self) -> Merged<'_, K, V> {
        Merged {
            base: self.base.iter().peekable(),
            changed: self.changed.iter().peekable(),
        }
    }

    /// No entry differs from the stored map.
    pub(crate) fn is_unchanged(&self) -> bool {
        self.changed
            .iter()
            .all(|(k, v)| self.base.get(k) == Some(v))
    }

    /// The entries that differ from the stored map, by key.
    fn into_changes(self) -> impl Iterator<Item = V> + 'a
    where
        K: 'a,
        V: 'a,
    {
        let base = self.base;
        self.changed
            .into_iter()
            .filter(move |(k, v)| base.get(k) != Some(v))
            .map(|(_, v)| v)
    }
}

/// Two sorted iterators merged by key; on equal keys the changed entry wins.
pub(crate) struct Merged<'m, K, V> {
    base: Peekable<btree_map::Iter<'m, K, V>>,
    changed: Peekable<btree_map::Iter<'m, K, V>>,
}

impl<'m, K: Ord, V> Iterator for Merged<'m, K, V> {
    type Item = (&'m K, &'m V);

    fn next(&mut self) -> Option<Self::Item> {
        match (self.base.peek(), self.changed.peek()) {
            (Some((bk, _)), Some((ck, _))) => match bk.cmp(ck) {
                std::cmp::Ordering::Less => self.base.next(),
                std::cmp::Ordering::Equal => {
                    self.base.next();
                    self.changed.next()
                }
                std::cmp::Ordering::Greater => self.changed.next(),
            },
            (Some(_), None) => self.base.next(),
            (None, _) => self.changed.next(),
        }
    }
}

/// The next state of a batch while the rules compute it: a copy of the root, the stored maps
/// and copies of the records changed so far.
pub(crate) struct Draft<'a> {
    /// The stored root, as loaded.
    base_root: &'a BatchRoot,
    pub(crate) root: BatchRoot,
    pub(crate) essays: Overlay<'a, String, EssayRecord>,
    pub(crate) phases: Overlay<'a, PhaseName, PhaseOutcomeRecord>,
    pub(crate) cj_jobs: Overlay<'a, String, CjJobRecord>,
}

impl<'a> Draft<'a> {
    pub(crate) fn new(agg: &'a BatchAggregate) -> Self {
        Draft {
            base_root: &agg.root,
            root: agg.root.clone(),
            essays: Overlay::new(&agg.essays),
            phases: Overlay::new(&agg.phases),
            cj_jobs: Overlay::new(&agg.cj_jobs),
        }
    }

    /// The root (always), the registration's essay ids when the registration changed, and
    /// every record that differs from the stored one, as a plan.
    pub(crate) fn into_plan(self, outbox: Vec<OutboxMessage>) -> Plan {
        let roster = match &self.root.registration {
            Some(registration) if self.base_root.registration.as_ref() != Some(registration) => {
                Some(StateChange::Roster(registration.essay_ids.clone()))
            }
            _ => None,
        };
        let mut changes = vec![StateChange::Root(self.root)];
        changes.extend(roster);
        changes.extend(self.essays.into_changes().map(StateChange::Essay));
        changes.extend(self.phases.into_changes().map(StateChange::Phase));
        changes.extend(self.cj_jobs.into_changes().map(StateChange::CjJob));
        Plan { changes, outbox }
    }
}

impl BatchFacts for Draft<'_> {
    fn root(&self) -> &BatchRoot {
        &self.root
    }
    fn essay(&self, essay_id: &str) -> Option<&EssayRecord> {
        self.essays.get(essay_id)
    }
    fn essays(&self) -> impl Iterator<Item = (&str, &EssayRecord)> {
        self.essays.iter().map(|(id, e)| (id.as_str(), e))
    }
    fn phase(&self, phase: PhaseName) -> Option<&PhaseOutcomeRecord> {
        self.phases.get(&phase)
    }
    fn phases(&self) -> impl Iterator<Item = (PhaseName, &PhaseOutcomeRecord)> {
        self.phases.iter().map(|(p, o)| (*p, o))
    }
    fn cj_jobs(&self) -> impl Iterator<Item = (&str, &CjJobRecord)> {
        self.cj_jobs.iter().map(|(id, j)| (id.as_str(), j))
    }
    fn has_cj_jobs(&self) -> bool {
        !self.cj_jobs.changed.is_empty() || !self.cj_jobs.base.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BTreeMap<String, u32> {
        [("b", 2), ("d", 4)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    #[test]
    fn overlay_merges_in_key_order_and_reports_only_real_changes() {
        let stored = base();
        let mut overlay = Overlay::new(&stored);
        assert!(overlay.iter().eq(stored.iter()));
        overlay.get_or_insert_with("a", || 1); // new
        *overlay.get_mut("d").expect("stored") = 40;
        overlay.get_or_insert_with("b", || 99); // copied, unchanged
        overlay.insert("e".to_string(), 5);
        assert!(overlay.get_mut("zz").is_none());
        let merged: Vec<(&str, u32)> = overlay.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(merged, [("a", 1), ("b", 2), ("d", 40), ("e", 5)]);
        assert_eq!(overlay.get("b"), Some(&2));
        assert!(overlay.contains_key("e") && !overlay.contains_key("c"));
        assert!(!overlay.is_unchanged());
        assert_eq!(overlay.into_changes().collect::<Vec<_>>(), [1, 40, 5]);

        let mut untouched = Overlay::new(&stored);
        untouched.get_mut("b");
        assert!(untouched.is_unchanged());
        assert_eq!(untouched.into_changes().count(), 0);
    }
}
