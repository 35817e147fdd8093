//! Snapshot file of the engine: every tenant's index with the change-feed position it reflects,
//! so a restart loads it and follows the feed from there instead of rebuilding from the store.
//!
//! Layout: magic (16 bytes), format version (u32), payload length (u64), XXH3-64 of the payload
//! (u64), payload. Integers little-endian; strings as u32 length + UTF-8. A file with another
//! version, a wrong checksum or a short payload is refused (the caller rebuilds).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::Path;

use serde_json::Value;

use crate::error::EngineError;
use crate::facts::AttrVal;
use crate::index::{FactRow, KeyData, Slot, TenantIndex};
use crate::plan::{Attr, Domain};

const MAGIC: &[u8; 16] = b"MEDICUS-COHORT\0\0";
pub const FORMAT_VERSION: u32 = 1;

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
}

struct Dec<'a>(&'a [u8]);

fn short() -> EngineError {
    EngineError::Snapshot("truncated".into())
}

impl Dec<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], EngineError> {
        if self.0.len() < n {
            return Err(short());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, EngineError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, EngineError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, EngineError> {
        Ok(self.u32()? as i32)
    }
    fn u64(&mut self) -> Result<u64, EngineError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn f64(&mut self) -> Result<f64, EngineError> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn len(&mut self) -> Result<usize, EngineError> {
        let n = self.u64()?;
        // A length can never exceed the bytes left: refuses corrupt counts before allocating.
        if n > self.0.len() as u64 {
            return Err(short());
        }
        Ok(n as usize)
    }
    fn str(&mut self) -> Result<String, EngineError> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| EngineError::Snapshot("bad string".into()))
    }
}

fn domain_code(d: Domain) -> u8 {
    Domain::ALL.iter().position(|x| *x == d).unwrap_or(0) as u8
}

fn domain_of(c: u8) -> Result<Domain, EngineError> {
    Domain::ALL
        .get(c as usize)
        .copied()
        .ok_or_else(|| EngineError::Snapshot("bad domain".into()))
}

const ATTRS: [Attr; 9] = [
    Attr::ClinicalStatus,
    Attr::VerificationStatus,
    Attr::Severity,
    Attr::BodySite,
    Attr::Status,
    Attr::Interpretation,
    Attr::Method,
    Attr::Dose,
    Attr::Diagnosis,
];

fn enc_attrs(e: &mut Enc, list: &[(Attr, AttrVal)]) {
    e.len(list.len());
    for (a, v) in list {
        e.u8(ATTRS.iter().position(|x| x == a).unwrap_or(0) as u8);
        match v {
            AttrVal::Concept { system, code } => {
                e.u8(0);
                e.str(system);
                e.str(code);
            }
            AttrVal::Quantity { value, unit } => {
                e.u8(1);
                e.f64(*value);
                e.str(unit.as_deref().unwrap_or(""));
                e.u8(u8::from(unit.is_some()));
            }
            AttrVal::Reference(r) => {
                e.u8(2);
                e.str(r);
            }
        }
    }
}

fn dec_attrs(d: &mut Dec) -> Result<Vec<(Attr, AttrVal)>, EngineError> {
    let n = d.len()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let a = *ATTRS
            .get(d.u8()? as usize)
            .ok_or_else(|| EngineError::Snapshot("bad attribute".into()))?;
        let v = match d.u8()? {
            0 => AttrVal::Concept {
                system: d.str()?,
                code: d.str()?,
            },
            1 => {
                let value = d.f64()?;
                let unit = d.str()?;
                let has = d.u8()? == 1;
                AttrVal::Quantity {
                    value,
                    unit: has.then_some(unit),
                }
            }
            2 => AttrVal::Reference(d.str()?),
            _ => return Err(EngineError::Snapshot("bad attribute value".into())),
        };
        out.push((a, v));
    }
    Ok(out)
}

fn enc_index(e: &mut Enc, ix: &TenantIndex) {
    e.len(ix.patient_ids.len());
    for (i, id) in ix.patient_ids.iter().enumerate() {
        e.str(id);
        e.u8(ix.gender[i]);
        e.i32(ix.birth[i]);
    }
    let meds: BTreeMap<_, _> = ix.medications.iter().collect();
    e.len(meds.len());
    for (id, codes) in meds {
        e.str(id);
        e.len(codes.len());
        for (s, c) in codes {
            e.str(s);
            e.str(c);
        }
    }
    let mut keys: Vec<(&(Domain, String, String), &u32)> = ix.keys.iter().collect();
    keys.sort_by_key(|(_, i)| **i);
    e.len(keys.len());
    for ((d, s, c), _) in keys {
        e.u8(domain_code(*d));
        e.str(s);
        e.str(c);
    }
    e.len(ix.units.len());
    for u in &ix.units {
        e.str(u);
    }
    e.len(ix.facts.len());
    for r in &ix.facts {
        e.u32(r.patient);
        e.u32(r.key);
        e.u32(r.slot);
        e.i32(r.start);
        e.i32(r.end);
        e.f64(r.value);
        e.u32(r.unit);
        e.u8(u8::from(r.alive));
    }
    let live = |f: &u32| ix.facts.get(*f as usize).is_some_and(|r| r.alive);
    let attrs: Vec<_> = ix.attrs.iter().filter(|(f, _)| live(f)).collect();
    e.len(attrs.len());
    for (f, list) in attrs {
        e.u32(*f);
        enc_attrs(e, list);
    }
    let vcs: Vec<_> = ix.value_concepts.iter().filter(|(f, _)| live(f)).collect();
    e.len(vcs.len());
    for (f, list) in vcs {
        e.u32(*f);
        e.len(list.len());
        for (s, c) in list {
            e.str(s);
            e.str(c);
        }
    }
    let mut names: Vec<(&String, &u32)> = ix.slot_of.iter().collect();
    names.sort_by_key(|(_, i)| **i);
    e.len(names.len());
    for (name, &i) in names {
        e.str(name);
        let s = &ix.slots[i as usize];
        e.len(s.facts.len());
        for f in &s.facts {
            e.u32(*f);
        }
        match &s.consent_of {
            None => e.u8(0),
            Some((p, id)) => {
                e.u8(1);
                e.u32(*p);
                e.str(id);
            }
        }
    }
    let consents: BTreeMap<_, _> = ix.consents.iter().collect();
    e.len(consents.len());
    for (p, map) in consents {
        e.u32(*p);
        e.len(map.len());
        for (id, v) in map {
            e.str(id);
            e.str(&v.to_string());
        }
    }
}

fn dec_index(d: &mut Dec) -> Result<TenantIndex, EngineError> {
    let bad = |m: &str| EngineError::Snapshot(m.to_owned());
    let mut ix = TenantIndex::new();
    let n = d.len()?;
    for _ in 0..n {
        let id = d.str()?;
        let p = ix.patient(&id);
        ix.gender[p as usize] = d.u8()?;
        ix.birth[p as usize] = d.i32()?;
    }
    let n = d.len()?;
    for _ in 0..n {
        let id = d.str()?;
        let m = d.len()?;
        let mut codes = Vec::with_capacity(m);
        for _ in 0..m {
            codes.push((d.str()?, d.str()?));
        }
        ix.medications.insert(id, codes);
    }
    let n = d.len()?;
    for i in 0..n {
        let dom = domain_of(d.u8()?)?;
        let (s, c) = (d.str()?, d.str()?);
        ix.insert_key(dom, &s, &c, i as u32);
        ix.key_data.push(KeyData::default());
    }
    let n = d.len()?;
    for i in 0..n {
        let u = d.str()?;
        ix.unit_of.insert(u.clone(), i as u32);
        ix.units.push(u);
    }
    let n = d.len()?;
    let patients = ix.patient_ids.len() as u32;
    for f in 0..n {
        let r = FactRow {
            patient: d.u32()?,
            key: d.u32()?,
            slot: d.u32()?,
            start: d.i32()?,
            end: d.i32()?,
            value: d.f64()?,
            unit: d.u32()?,
            alive: d.u8()? == 1,
        };
        if r.patient >= patients || r.key as usize >= ix.key_data.len() {
            return Err(bad("fact out of range"));
        }
        if r.alive {
            let kd = &mut ix.key_data[r.key as usize];
            kd.facts.push(f as u32);
            kd.dirty = true;
        }
        ix.facts.push(r);
    }
    let n = d.len()?;
    for _ in 0..n {
        let f = d.u32()?;
        ix.attrs.insert(f, dec_attrs(d)?);
    }
    let n = d.len()?;
    for _ in 0..n {
        let f = d.u32()?;
        let m = d.len()?;
        let mut list = Vec::with_capacity(m);
        for _ in 0..m {
            list.push((d.str()?, d.str()?));
        }
        ix.value_concepts.insert(f, list);
    }
    let n = d.len()?;
    for i in 0..n {
        let name = d.str()?;
        let m = d.len()?;
        let mut facts = Vec::with_capacity(m);
        for _ in 0..m {
            let f = d.u32()?;
            if f as usize >= ix.facts.len() {
                return Err(bad("slot fact out of range"));
            }
            facts.push(f);
        }
        let consent_of = match d.u8()? {
            0 => None,
            _ => Some((d.u32()?, d.str()?)),
        };
        ix.slot_of.insert(name, i as u32);
        ix.slots.push(Slot { facts, consent_of });
    }
    let n = d.len()?;
    for _ in 0..n {
        let p = d.u32()?;
        let m = d.len()?;
        let mut map = BTreeMap::new();
        for _ in 0..m {
            let id = d.str()?;
            let v: Value = serde_json::from_str(&d.str()?).map_err(|_| bad("bad consent JSON"))?;
            map.insert(id, v);
        }
        ix.consents.insert(p, map);
    }
    ix.finish_load();
    Ok(ix)
}

/// Writes the snapshot atomically (a temporary file renamed over the old one).
pub(crate) fn save(
    path: &Path,
    position: i64,
    tenants: &HashMap<String, TenantIndex>,
) -> Result<(), EngineError> {
    let mut e = Enc(Vec::new());
    e.u64(position as u64);
    let sorted: BTreeMap<_, _> = tenants.iter().collect();
    e.len(sorted.len());
    for (name, ix) in sorted {
        e.str(name);
        enc_index(&mut e, ix);
    }
    let payload = e.0;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f.write_all(MAGIC)?;
        f.write_all(&FORMAT_VERSION.to_le_bytes())?;
        f.write_all(&(payload.len() as u64).to_le_bytes())?;
        f.write_all(&xxhash_rust::xxh3::xxh3_64(&payload).to_le_bytes())?;
        f.write_all(&payload)?;
        f.flush()?;
        f.into_inner()
            .map_err(|e| EngineError::Io(e.into_error()))?
            .sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Reads a snapshot: the change-feed position and the tenants' indexes (consents not yet
/// compiled: the engine does that with its eligibility rule).
pub(crate) fn load(path: &Path) -> Result<(i64, HashMap<String, TenantIndex>), EngineError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    let mut d = Dec(&bytes);
    if d.take(16)? != MAGIC {
        return Err(EngineError::Snapshot("not a cohort snapshot".into()));
    }
    let version = d.u32()?;
    if version != FORMAT_VERSION {
        return Err(EngineError::Snapshot(format!(
            "format version {version}, this release reads {FORMAT_VERSION}"
        )));
    }
    let len = d.u64()?;
    let sum = d.u64()?;
    if d.0.len() as u64 != len {
        return Err(short());
    }
    if xxhash_rust::xxh3::xxh3_64(d.0) != sum {
        return Err(EngineError::Snapshot("checksum mismatch".into()));
    }
    let position = d.u64()? as i64;
    let n = d.len()?;
    let mut tenants = HashMap::new();
    for _ in 0..n {
        let name = d.str()?;
        tenants.insert(name, dec_index(&mut d)?);
    }
    Ok((position, tenants))
}
