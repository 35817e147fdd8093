//! One tenant's in-memory cohort index.
//!
//! Patients get dense ordinals. Every fact (a coded resource, or a permit of a Consent) lives in
//! an arena row (patient, key, period, value, unit) and is listed under its key
//! `(domain, system, code)`. Per key the index keeps a roaring bitmap of the patients with any
//! such fact, the facts sorted by value (quantity filters: a binary search), and the dated facts
//! sorted by start day with the longest span (time windows: a binary search). Medication facts
//! that name a Medication by reference are keyed by that Medication, and a code selects the
//! Medications whose codes match at query time, so a changed catalogue needs no re-index.
//!
//! Changes replace a resource's earlier contributions: its facts are marked dead and their keys
//! dirty; [`TenantIndex::refresh`] rebuilds the dirty keys' bitmaps and columns. Arena rows
//! are reused only after that, so a key's list never holds a row that now belongs elsewhere.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use medicus_consent::PatientConsent;
use roaring::RoaringBitmap;
use serde_json::Value;

use crate::consent::ResearchEligibility;
use crate::date::age_in;
use crate::facts::{AttrVal, Extracted, Fact, extract};
use crate::plan::{Attr, AttrTest, CodeSel, Crit, Domain, FactCrit, NumTest, Plan, ValueTest};

/// Key system under which medication facts that reference a Medication are filed.
pub(crate) const MED_SYSTEM: &str = "#medication";
const NO_UNIT: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FactRow {
    pub patient: u32,
    pub key: u32,
    pub slot: u32,
    /// Inclusive day range; undated facts have `start > end` and never meet a time window.
    pub start: i32,
    pub end: i32,
    /// NaN without a quantity.
    pub value: f64,
    pub unit: u32,
    pub alive: bool,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct KeyData {
    pub facts: Vec<u32>,
    pub bitmap: RoaringBitmap,
    pub by_value: Vec<u32>,
    pub by_start: Vec<u32>,
    pub max_span: i64,
    pub dirty: bool,
}

/// Per-resource bookkeeping: the facts it contributed and, for a Consent, whose it was.
#[derive(Debug, Default, Clone)]
pub(crate) struct Slot {
    pub facts: Vec<u32>,
    /// For a Consent: the patient and the resource id.
    pub consent_of: Option<(u32, String)>,
}

#[derive(Debug, Default)]
struct Mask {
    day: Option<i32>,
    bitmap: RoaringBitmap,
}

/// The index of one tenant.
#[derive(Debug, Default)]
pub struct TenantIndex {
    pub(crate) patient_ord: HashMap<String, u32>,
    pub(crate) patient_ids: Vec<String>,
    /// Per ordinal: `Gender::index()` or 255.
    pub(crate) gender: Vec<u8>,
    /// Per ordinal: birth day or `i32::MIN`.
    pub(crate) birth: Vec<i32>,
    gender_bm: [RoaringBitmap; 4],
    by_birth: Vec<(i32, u32)>,
    demo_dirty: bool,
    /// Per patient ordinal: their Consents (trimmed) by resource id.
    pub(crate) consents: HashMap<u32, BTreeMap<String, Value>>,
    compiled: HashMap<u32, PatientConsent>,
    mask: Mutex<Mask>,
    pub(crate) medications: HashMap<String, Vec<(String, String)>>,
    pub(crate) keys: BTreeMap<(Domain, String, String), u32>,
    /// The same keys for lookups by `&str` without allocating: per domain, system, code.
    key_lookup: [HashMap<String, HashMap<String, u32>>; 8],
    pub(crate) key_data: Vec<KeyData>,
    pub(crate) facts: Vec<FactRow>,
    free: Vec<u32>,
    pending_free: Vec<u32>,
    pub(crate) attrs: HashMap<u32, Vec<(Attr, AttrVal)>>,
    pub(crate) value_concepts: HashMap<u32, Vec<(String, String)>>,
    pub(crate) slot_of: HashMap<String, u32>,
    pub(crate) slots: Vec<Slot>,
    pub(crate) unit_of: HashMap<String, u32>,
    pub(crate) units: Vec<String>,
    live_facts: u64,
}

/// Sizes of an index, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexStats {
    pub patients: u64,
    pub facts: u64,
    pub keys: u64,
}

impl TenantIndex {
    pub fn new() -> TenantIndex {
        TenantIndex::default()
    }

    pub fn stats(&self) -> IndexStats {
        IndexStats {
            patients: self.patient_ids.len() as u64,
            facts: self.live_facts,
            keys: self.keys.len() as u64,
        }
    }

    pub(crate) fn patient(&mut self, id: &str) -> u32 {
        if let Some(&p) = self.patient_ord.get(id) {
            return p;
        }
        let p = self.patient_ids.len() as u32;
        self.patient_ord.insert(id.to_owned(), p);
        self.patient_ids.push(id.to_owned());
        self.gender.push(255);
        self.birth.push(i32::MIN);
        p
    }

    fn unit(&mut self, u: &str) -> u32 {
        if let Some(&i) = self.unit_of.get(u) {
            return i;
        }
        let i = self.units.len() as u32;
        self.unit_of.insert(u.to_owned(), i);
        self.units.push(u.to_owned());
        i
    }

    fn key(&mut self, domain: Domain, system: &str, code: &str) -> u32 {
        // The common case (a known key) allocates nothing.
        if let Some(&k) = self.key_lookup[domain.index()]
            .get(system)
            .and_then(|m| m.get(code))
        {
            return k;
        }
        let k = self.key_data.len() as u32;
        self.insert_key(domain, system, code, k);
        self.key_data.push(KeyData::default());
        k
    }

    pub(crate) fn insert_key(&mut self, domain: Domain, system: &str, code: &str, k: u32) {
        self.keys
            .insert((domain, system.to_owned(), code.to_owned()), k);
        self.key_lookup[domain.index()]
            .entry(system.to_owned())
            .or_default()
            .insert(code.to_owned(), k);
    }

    fn slot(&mut self, name: &str) -> u32 {
        if let Some(&s) = self.slot_of.get(name) {
            return s;
        }
        let s = self.slots.len() as u32;
        self.slot_of.insert(name.to_owned(), s);
        self.slots.push(Slot::default());
        s
    }

    /// Replaces what `resource_type/id` contributes with what `body` says (`None`: deleted).
    /// Call [`TenantIndex::refresh`] before counting.
    pub fn apply(
        &mut self,
        resource_type: &str,
        id: &str,
        body: Option<&Value>,
        eligibility: &dyn ResearchEligibility,
    ) {
        let extracted = body.map(extract).unwrap_or(Extracted::Nothing);
        self.apply_inner(resource_type, id, extracted, eligibility);
    }

    fn apply_inner(
        &mut self,
        resource_type: &str,
        id: &str,
        extracted: Extracted,
        eligibility: &dyn ResearchEligibility,
    ) {
        match resource_type {
            "Patient" => {
                let p = self.patient(id);
                let (g, b) = match extracted {
                    Extracted::Patient { gender, birth, .. } => (
                        gender.map(|g| g.index() as u8).unwrap_or(255),
                        birth.unwrap_or(i32::MIN),
                    ),
                    _ => (255, i32::MIN),
                };
                let pi = p as usize;
                if self.gender[pi] != g || self.birth[pi] != b {
                    self.gender[pi] = g;
                    self.birth[pi] = b;
                    self.demo_dirty = true;
                }
            }
            "Medication" => match extracted {
                Extracted::Medication { codes, .. } => {
                    self.medications.insert(id.to_owned(), codes);
                }
                _ => {
                    self.medications.remove(id);
                }
            },
            _ => {
                if Domain::from_resource_type(resource_type).is_none() {
                    return;
                }
                let name = format!("{resource_type}/{id}");
                let slot = self.slot(&name);
                self.remove_slot(slot, eligibility);
                if let Extracted::Facts {
                    patient,
                    facts,
                    consent,
                } = extracted
                {
                    let p = self.patient(&patient);
                    for f in facts {
                        self.add_fact(p, slot, f);
                    }
                    if let Some(c) = consent {
                        self.consents.entry(p).or_default().insert(id.to_owned(), c);
                        self.slots[slot as usize].consent_of = Some((p, id.to_owned()));
                        self.recompile(p, eligibility);
                    }
                }
            }
        }
    }

    fn remove_slot(&mut self, slot: u32, eligibility: &dyn ResearchEligibility) {
        let s = std::mem::take(&mut self.slots[slot as usize]);
        for f in s.facts {
            let row = &mut self.facts[f as usize];
            if row.alive {
                row.alive = false;
                self.live_facts -= 1;
                self.key_data[row.key as usize].dirty = true;
                self.pending_free.push(f);
            }
            self.attrs.remove(&f);
            self.value_concepts.remove(&f);
        }
        if let Some((p, id)) = s.consent_of {
            if let Some(map) = self.consents.get_mut(&p) {
                map.remove(&id);
            }
            self.recompile(p, eligibility);
        }
    }

    fn recompile(&mut self, p: u32, eligibility: &dyn ResearchEligibility) {
        let list: Vec<Value> = self
            .consents
            .get(&p)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        if list.is_empty() {
            self.consents.remove(&p);
            self.compiled.remove(&p);
        } else {
            self.compiled.insert(p, eligibility.compile(&list));
        }
        // Patch the cached mask for this patient instead of recomputing it.
        if let Ok(mut m) = self.mask.lock()
            && let Some(day) = m.day
        {
            if self
                .compiled
                .get(&p)
                .is_some_and(|c| eligibility.permits(c, day))
            {
                m.bitmap.insert(p);
            } else {
                m.bitmap.remove(p);
            }
        }
    }

    fn add_fact(&mut self, patient: u32, slot: u32, f: Fact) {
        let (start, end) = f.period.unwrap_or((i32::MAX, i32::MIN));
        let (value, unit) = match &f.quantity {
            Some((v, Some(u))) => (*v, self.unit(u)),
            Some((v, None)) => (*v, NO_UNIT),
            None => (f64::NAN, NO_UNIT),
        };
        let mut keys: Vec<u32> = f
            .codes
            .iter()
            .map(|(s, c)| self.key(f.domain, s, c))
            .collect();
        if let Some(m) = &f.medication {
            keys.push(self.key(f.domain, MED_SYSTEM, m));
        }
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            let row = FactRow {
                patient,
                key,
                slot,
                start,
                end,
                value,
                unit,
                alive: true,
            };
            let fid = match self.free.pop() {
                Some(i) => {
                    self.facts[i as usize] = row;
                    i
                }
                None => {
                    self.facts.push(row);
                    (self.facts.len() - 1) as u32
                }
            };
            self.live_facts += 1;
            if !f.attrs.is_empty() {
                self.attrs.insert(fid, f.attrs.clone());
            }
            if !f.value_concepts.is_empty() {
                self.value_concepts.insert(fid, f.value_concepts.clone());
            }
            let kd = &mut self.key_data[key as usize];
            kd.facts.push(fid);
            kd.dirty = true;
            self.slots[slot as usize].facts.push(fid);
        }
    }

    /// Rebuilds what changes made stale: the dirty keys' bitmaps and columns, the demographic
    /// columns. Cheap when little changed.
    pub fn refresh(&mut self) {
        let facts = &self.facts;
        for (k, kd) in self.key_data.iter_mut().enumerate() {
            if !kd.dirty {
                continue;
            }
            kd.facts
                .retain(|&f| facts[f as usize].alive && facts[f as usize].key == k as u32);
            kd.facts.sort_unstable();
            kd.facts.dedup();
            let mut patients: Vec<u32> = kd
                .facts
                .iter()
                .map(|&f| facts[f as usize].patient)
                .collect();
            patients.sort_unstable();
            patients.dedup();
            kd.bitmap = RoaringBitmap::from_sorted_iter(patients).unwrap_or_default();
            kd.by_value = kd
                .facts
                .iter()
                .copied()
                .filter(|&f| !facts[f as usize].value.is_nan())
                .collect();
            kd.by_value.sort_unstable_by(|&a, &b| {
                facts[a as usize].value.total_cmp(&facts[b as usize].value)
            });
            kd.by_start = kd
                .facts
                .iter()
                .copied()
                .filter(|&f| facts[f as usize].start <= facts[f as usize].end)
                .collect();
            kd.by_start
                .sort_unstable_by_key(|&f| facts[f as usize].start);
            kd.max_span = kd
                .by_start
                .iter()
                .map(|&f| i64::from(facts[f as usize].end) - i64::from(facts[f as usize].start))
                .max()
                .unwrap_or(0);
            kd.facts.shrink_to_fit();
            kd.dirty = false;
        }
        self.free.append(&mut self.pending_free);
        if self.demo_dirty {
            for b in &mut self.gender_bm {
                b.clear();
            }
            self.by_birth.clear();
            for (p, (&g, &b)) in self.gender.iter().zip(&self.birth).enumerate() {
                if let Some(bm) = self.gender_bm.get_mut(g as usize) {
                    bm.insert(p as u32);
                }
                if b != i32::MIN {
                    self.by_birth.push((b, p as u32));
                }
            }
            self.by_birth.sort_unstable();
            self.demo_dirty = false;
        }
    }

    /// After a snapshot load: derived state from the loaded rows.
    pub(crate) fn finish_load(&mut self) {
        self.live_facts = self.facts.iter().filter(|r| r.alive).count() as u64;
        self.free = (0..self.facts.len() as u32)
            .filter(|&f| !self.facts[f as usize].alive)
            .collect();
        self.demo_dirty = true;
        self.refresh();
    }

    /// Applies an already extracted resource (extraction can run on other threads).
    pub fn apply_extracted(
        &mut self,
        resource_type: &str,
        id: &str,
        extracted: Extracted,
        eligibility: &dyn ResearchEligibility,
    ) {
        self.apply_inner(resource_type, id, extracted, eligibility);
    }

    /// Recomputes the compiled consent of every patient (after loading a snapshot).
    pub(crate) fn recompile_all(&mut self, eligibility: &dyn ResearchEligibility) {
        self.compiled = self
            .consents
            .iter()
            .map(|(p, m)| {
                let list: Vec<Value> = m.values().cloned().collect();
                (*p, eligibility.compile(&list))
            })
            .collect();
        if let Ok(mut m) = self.mask.lock() {
            m.day = None;
        }
    }

    /// The patients research may count on `today`.
    fn mask(&self, today: i32, eligibility: &dyn ResearchEligibility) -> RoaringBitmap {
        let Ok(mut m) = self.mask.lock() else {
            // A poisoned lock: fail closed (nobody counts) rather than unmasked.
            return RoaringBitmap::new();
        };
        if m.day != Some(today) {
            let mut ids: Vec<u32> = self
                .compiled
                .iter()
                .filter(|(_, c)| eligibility.permits(c, today))
                .map(|(p, _)| *p)
                .collect();
            ids.sort_unstable();
            m.bitmap = RoaringBitmap::from_sorted_iter(ids).unwrap_or_default();
            m.day = Some(today);
        }
        m.bitmap.clone()
    }

    /// The exact number of patients meeting `plan` among those research may count. The
    /// consent mask is applied here, and nothing outside this module reads the index.
    pub fn count(&self, plan: &Plan, today: i32, eligibility: &dyn ResearchEligibility) -> u64 {
        let mask = self.mask(today, eligibility);
        let mut result = mask;
        for group in &plan.include {
            let mut any = RoaringBitmap::new();
            for c in group {
                any |= self.crit(c, today);
            }
            result &= any;
            if result.is_empty() {
                return 0;
            }
        }
        for group in &plan.exclude {
            let mut all: Option<RoaringBitmap> = None;
            for c in group {
                let b = self.crit(c, today);
                all = Some(match all {
                    None => b,
                    Some(a) => a & b,
                });
            }
            if let Some(a) = all {
                result -= a;
            }
        }
        result.len()
    }

    fn crit(&self, c: &Crit, today: i32) -> RoaringBitmap {
        match c {
            Crit::Gender(list) => {
                let mut out = RoaringBitmap::new();
                for g in list {
                    out |= &self.gender_bm[g.index()];
                }
                out
            }
            Crit::Age { test, unit } => {
                let age = |e: &(i32, u32)| age_in(*unit, e.0, today);
                // Ages fall as birth days rise: every test is a contiguous run of `by_birth`.
                let pp =
                    |pred: &dyn Fn(f64) -> bool| self.by_birth.partition_point(|e| pred(age(e)));
                let n = self.by_birth.len();
                let ranges: Vec<(usize, usize)> = match *test {
                    NumTest::Cmp(c, v) => {
                        use crate::ccdl::Comparator::*;
                        let gt = pp(&|a| a > v);
                        let ge = pp(&|a| a >= v);
                        match c {
                            Gt => vec![(0, gt)],
                            Ge => vec![(0, ge)],
                            Lt => vec![(ge, n)],
                            Le => vec![(gt, n)],
                            Eq => vec![(gt, ge)],
                            Ne => vec![(0, gt), (ge, n)],
                        }
                    }
                    NumTest::Range(lo, hi) => {
                        let a = pp(&|x| x > hi);
                        let b = pp(&|x| x >= lo);
                        vec![(a, b.max(a))]
                    }
                };
                let mut out = RoaringBitmap::new();
                for (a, b) in ranges {
                    if let Some(s) = self.by_birth.get(a..b) {
                        out.extend(s.iter().map(|e| e.1));
                    }
                }
                out
            }
            Crit::Facts(fc) => self.fact_patients(fc),
        }
    }

    fn keys_for(&self, fc: &FactCrit) -> Vec<u32> {
        let mut out = Vec::new();
        for &domain in &fc.domains {
            for sel in &fc.codes {
                self.keys_matching(domain, sel, &mut out);
                if domain.is_medication() {
                    for (mid, codes) in &self.medications {
                        if codes.iter().any(|(s, c)| sel.matches(s, c))
                            && let Some(&k) =
                                self.keys.get(&(domain, MED_SYSTEM.to_owned(), mid.clone()))
                        {
                            out.push(k);
                        }
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn keys_matching(&self, domain: Domain, sel: &CodeSel, out: &mut Vec<u32>) {
        if !sel.prefix {
            if let Some(&k) = self
                .keys
                .get(&(domain, sel.system.clone(), sel.code.clone()))
            {
                out.push(k);
            }
            return;
        }
        let from = (domain, sel.system.clone(), sel.code.clone());
        for ((d, s, c), &k) in self.keys.range(from..) {
            if *d != domain || *s != sel.system || !c.starts_with(&sel.code) {
                break;
            }
            out.push(k);
        }
    }

    fn fact_patients(&self, fc: &FactCrit) -> RoaringBitmap {
        let keys = self.keys_for(fc);
        let mut out = RoaringBitmap::new();
        if fc.value.is_none() && fc.attrs.is_empty() && fc.time.is_none() {
            for k in keys {
                out |= &self.key_data[k as usize].bitmap;
            }
            return out;
        }
        let mut patients = Vec::new();
        self.matching_facts(fc, &keys, &mut |row| patients.push(row.patient));
        patients.sort_unstable();
        patients.dedup();
        RoaringBitmap::from_sorted_iter(patients).unwrap_or_default()
    }

    /// Calls `each` with every live fact under `keys` that meets all of `fc`'s filters.
    fn matching_facts(&self, fc: &FactCrit, keys: &[u32], each: &mut dyn FnMut(&FactRow)) {
        // Reference filters: the slots of the resources meeting the nested criteria.
        let ref_sets: Vec<Option<HashSet<u32>>> = fc
            .attrs
            .iter()
            .map(|(_, t)| match t {
                AttrTest::Reference(nested) => {
                    let mut set = HashSet::new();
                    for n in nested {
                        let nk = self.keys_for(n);
                        self.matching_facts(n, &nk, &mut |row| {
                            set.insert(row.slot);
                        });
                    }
                    Some(set)
                }
                _ => None,
            })
            .collect();
        let unit_id = |u: &Option<String>| -> Option<Option<u32>> {
            match u {
                None => Some(None),
                Some(u) => self.unit_of.get(u).map(|&i| Some(i)),
            }
        };
        let value_unit = match &fc.value {
            Some(ValueTest::Quantity { unit, .. }) => match unit_id(unit) {
                Some(u) => u,
                // A unit no fact carries: nothing can match.
                None => return,
            },
            _ => None,
        };
        for &k in keys {
            let kd = &self.key_data[k as usize];
            let candidates: &[u32] = match (&fc.value, fc.time) {
                (Some(ValueTest::Quantity { test, .. }), _) => {
                    let v = |f: &u32| self.facts[*f as usize].value;
                    let (lo, hi) = match *test {
                        NumTest::Cmp(c, b) => {
                            use crate::ccdl::Comparator::*;
                            match c {
                                Gt => (
                                    kd.by_value.partition_point(|f| v(f) <= b),
                                    kd.by_value.len(),
                                ),
                                Ge | Eq => {
                                    let lo = kd.by_value.partition_point(|f| v(f) < b);
                                    let hi = if c == Eq {
                                        kd.by_value.partition_point(|f| v(f) <= b)
                                    } else {
                                        kd.by_value.len()
                                    };
                                    (lo, hi)
                                }
                                Lt => (0, kd.by_value.partition_point(|f| v(f) < b)),
                                Le => (0, kd.by_value.partition_point(|f| v(f) <= b)),
                                Ne => (0, kd.by_value.len()),
                            }
                        }
                        NumTest::Range(a, b) => (
                            kd.by_value.partition_point(|f| v(f) < a),
                            kd.by_value.partition_point(|f| v(f) <= b),
                        ),
                    };
                    kd.by_value.get(lo..hi.max(lo)).unwrap_or(&[])
                }
                (_, Some((a, b))) => {
                    let s = |f: &u32| i64::from(self.facts[*f as usize].start);
                    let from = i64::from(a).saturating_sub(kd.max_span);
                    let lo = kd.by_start.partition_point(|f| s(f) < from);
                    let hi = kd.by_start.partition_point(|f| s(f) <= i64::from(b));
                    kd.by_start.get(lo..hi.max(lo)).unwrap_or(&[])
                }
                _ => &kd.facts,
            };
            for &f in candidates {
                let row = &self.facts[f as usize];
                if !row.alive || row.key != k {
                    continue;
                }
                if self.fact_ok(f, row, fc, value_unit, &ref_sets) {
                    each(row);
                }
            }
        }
    }

    fn fact_ok(
        &self,
        f: u32,
        row: &FactRow,
        fc: &FactCrit,
        value_unit: Option<u32>,
        ref_sets: &[Option<HashSet<u32>>],
    ) -> bool {
        if let Some((a, b)) = fc.time
            && !(row.start <= b && row.end >= a)
        {
            return false;
        }
        match &fc.value {
            None => {}
            Some(ValueTest::Quantity { test, .. }) => {
                if row.value.is_nan() || !test.holds(row.value) {
                    return false;
                }
                if let Some(u) = value_unit
                    && row.unit != u
                {
                    return false;
                }
            }
            Some(ValueTest::Concept(sel)) => {
                let ok = self
                    .value_concepts
                    .get(&f)
                    .is_some_and(|vc| vc.iter().any(|(s, c)| sel.iter().any(|x| x.matches(s, c))));
                if !ok {
                    return false;
                }
            }
        }
        let attrs = self.attrs.get(&f).map(Vec::as_slice).unwrap_or(&[]);
        for (i, (attr, test)) in fc.attrs.iter().enumerate() {
            let ok = attrs
                .iter()
                .filter(|(a, _)| a == attr)
                .any(|(_, v)| match (test, v) {
                    (AttrTest::Concept(sel), AttrVal::Concept { system, code }) => {
                        sel.iter().any(|x| x.matches(system, code))
                    }
                    (AttrTest::Quantity { test, unit }, AttrVal::Quantity { value, unit: vu }) => {
                        test.holds(*value) && (unit.is_none() || vu == unit)
                    }
                    (AttrTest::Reference(_), AttrVal::Reference(r)) => {
                        let set = ref_sets.get(i).and_then(Option::as_ref);
                        match (set, self.slot_of.get(r.as_str())) {
                            (Some(set), Some(slot)) => {
                                set.contains(slot)
                                    && self.slots[*slot as usize].facts.first().is_some_and(|&nf| {
                                        self.facts[nf as usize].patient == row.patient
                                    })
                            }
                            _ => false,
                        }
                    }
                    _ => false,
                });
            if !ok {
                return false;
            }
        }
        true
    }

    /// The codes present, per domain, for the term catalogue (no counts).
    pub fn catalogue(&self) -> Vec<(Domain, String, String)> {
        let mut out: Vec<(Domain, String, String)> = self
            .keys
            .iter()
            .filter(|(k, i)| k.1 != MED_SYSTEM && !self.key_data[**i as usize].facts.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        for (mid, codes) in &self.medications {
            for &d in &[
                Domain::MedicationStatement,
                Domain::MedicationRequest,
                Domain::MedicationAdministration,
            ] {
                if self
                    .keys
                    .get(&(d, MED_SYSTEM.to_owned(), mid.clone()))
                    .is_some_and(|&k| !self.key_data[k as usize].facts.is_empty())
                {
                    out.extend(codes.iter().map(|(s, c)| (d, s.clone(), c.clone())));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}
