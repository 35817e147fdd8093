//! Store sessions that ask the policy before every read, search, history page and write.
//!
//! What a caller may not see does not exist for it: a read of a resource outside its reach is
//! `None` (404, never 403, so that ids of other patients' records are not confirmed), a search
//! is restricted inside the database (compartment clause and scope constraints become criteria,
//! so totals and paging never count what is hidden), and a history or write outside its reach
//! is refused. A type the caller may not touch at all is refused with a reason.

use medicus_auth::policy::{Interaction, matches_constraint};
use medicus_store::StoreError;
use medicus_store::api::{
    ExtractedPut, HistoryPage, HistoryQuery, HistoryScope, Precondition, RawPage, RawResource,
    ReadSession, ResourceVersion, TxId, WriteOutcome, WriteSession,
};
use medicus_store::index::{IndexEntry, body_in_patient_compartment, in_patient_compartment};
use medicus_store::search::{
    CompartmentFilter, Criterion, CriterionValue, SearchPage, SearchQuery,
};
use serde_json::Value;

use super::{Access, Reach};

fn refused(interaction: &Interaction, resource_type: &str, reason: &str) -> StoreError {
    match super::forbidden(interaction, resource_type, reason) {
        crate::fhir::FhirError::Forbidden(text) => StoreError::Forbidden(text),
        other => StoreError::Forbidden(other.to_string()),
    }
}

fn require(access: &Access, interaction: Interaction, rt: &str) -> Result<Reach, StoreError> {
    access
        .reach(&interaction, rt)
        .map_err(|reason| refused(&interaction, rt, reason))
}

/// Whether a stored body is within `reach` (compartment and scope constraints).
fn visible(reach: &Reach, rt: &str, id: &str, body: &Value) -> bool {
    if let Reach::Patient { patient, .. } = reach
        && !body_in_patient_compartment(rt, id, body, patient)
    {
        return false;
    }
    satisfies_filters(reach, body)
}

fn satisfies_filters(reach: &Reach, body: &Value) -> bool {
    let filters = reach.filters();
    filters.is_empty()
        || filters
            .iter()
            .any(|all| all.iter().all(|c| matches_constraint(body, c)))
}

/// A body about to be written is within `reach` (its index entries are already extracted).
fn writable(reach: &Reach, rt: &str, id: &str, body: &Value, entries: &[IndexEntry]) -> bool {
    if let Reach::Patient { patient, .. } = reach
        && !in_patient_compartment(rt, id, entries, patient)
    {
        return false;
    }
    satisfies_filters(reach, body)
}

/// The query restricted to `reach` inside the database, or a refusal when the restriction
/// cannot be expressed (constraints of several scopes on different parameters).
fn restrict_query(
    access: &Access,
    rt: Option<&str>,
    query: &SearchQuery,
    omit_denied: bool,
) -> Result<SearchQuery, StoreError> {
    if access.is_open() {
        return Ok(query.clone());
    }
    let Some(rt) = rt else {
        return access
            .require_everywhere(Interaction::Search)
            .map(|()| query.clone())
            .map_err(|e| StoreError::Forbidden(e.to_string()));
    };
    let reach = match require(access, Interaction::Search, rt) {
        Ok(reach) => reach,
        Err(_) if omit_denied => {
            // Searches over many types (`Patient/{id}/*`, `$everything`) leave out the types
            // the caller may not search: an empty compartment matches nothing.
            let mut none = query.clone();
            none.compartment = Some(CompartmentFilter {
                patients: Some(Vec::new()),
            });
            return Ok(none);
        }
        Err(e) => return Err(e),
    };
    check_linked_types(access, &query.criteria)?;
    if reach.is_unrestricted() {
        return Ok(query.clone());
    }
    let mut query = query.clone();
    if let Reach::Patient { patient, .. } = &reach {
        let patients = match query.compartment.take().and_then(|c| c.patients) {
            // Another compartment asked for: only the overlap with the caller's.
            Some(asked) => asked.into_iter().filter(|p| p == patient).collect(),
            None => vec![patient.clone()],
        };
        query.compartment = Some(CompartmentFilter {
            patients: Some(patients),
        });
    }
    query.criteria.extend(filter_criteria(rt, reach.filters())?);
    Ok(query)
}

/// Chained and reverse-chained (`_has`) parameters look into other types: each of those must be
/// open to the caller without restriction, or the chain would answer questions about records it
/// may not see (e.g. `Practitioner?_has:Observation:performer:code=…`).
fn check_linked_types(access: &Access, criteria: &[Criterion]) -> Result<(), StoreError> {
    for c in criteria {
        for value in &c.values {
            let (linked, inner) = match value {
                CriterionValue::Chain(chain) => (chain.target_type.as_str(), &chain.criteria),
                CriterionValue::Has(has) => (has.source_type.as_str(), &has.criteria),
                _ => continue,
            };
            let reach = require(access, Interaction::Search, linked)?;
            if !reach.is_unrestricted() {
                return Err(StoreError::Forbidden(format!(
                    "the chained parameter '{}' searches {linked}, which the token reaches only in part",
                    c.code
                )));
            }
            check_linked_types(access, inner)?;
        }
    }
    Ok(())
}

/// Scope constraints (`?category=laboratory`) as search criteria. Several constrained scopes
/// combine with OR, which one query can carry only as values of one parameter.
fn filter_criteria(
    rt: &str,
    filters: &medicus_auth::policy::Filters,
) -> Result<Vec<Criterion>, StoreError> {
    let pairs: Vec<(String, String)> = match filters.as_slice() {
        [] => return Ok(Vec::new()),
        [only] => only
            .iter()
            .map(|c| (c.param.clone(), c.value.clone()))
            .collect(),
        several => {
            let param = several
                .first()
                .and_then(|all| all.first())
                .map(|c| c.param.clone())
                .unwrap_or_default();
            if !several
                .iter()
                .all(|all| all.len() == 1 && all[0].param == param)
            {
                return Err(StoreError::Forbidden(format!(
                    "the token's scopes on {rt} carry constraints on different parameters; search with one scope's constraint explicitly"
                )));
            }
            let values: Vec<&str> = several.iter().map(|all| all[0].value.as_str()).collect();
            vec![(param, values.join(","))]
        }
    };
    let parsed = medicus_store::search::parse_search(medicus_fhir::r4(), Some(rt), &pairs)
        .map_err(|e| {
            StoreError::Forbidden(format!("a scope constraint cannot be searched: {e}"))
        })?;
    Ok(parsed.criteria)
}

fn guarded_read(
    inner: &mut dyn ReadSession,
    access: &Access,
    interaction: Interaction,
    rt: &str,
    id: &str,
    version: Option<i64>,
) -> Result<Option<ResourceVersion>, StoreError> {
    // A type out of reach reads as absent: the handler has refused it up front already, and
    // an `_include` of it is simply left out.
    let Ok(reach) = access.reach(&interaction, rt) else {
        return Ok(None);
    };
    let found = match version {
        Some(v) => inner.vread(rt, id, v)?,
        None => inner.read(rt, id)?,
    };
    if reach.is_unrestricted() {
        return Ok(found);
    }
    // A deletion marker says nothing about whose it was: hidden from restricted callers.
    Ok(found.filter(|v| v.body.as_ref().is_some_and(|b| visible(&reach, rt, id, b))))
}

fn guarded_history(
    inner: &mut dyn ReadSession,
    access: &Access,
    scope: HistoryScope<'_>,
    query: &HistoryQuery,
) -> Result<HistoryPage, StoreError> {
    if access.is_open() {
        return inner.history(scope, query);
    }
    match scope {
        HistoryScope::System => {
            access
                .require_everywhere(Interaction::History)
                .map_err(|e| StoreError::Forbidden(e.to_string()))?;
            inner.history(scope, query)
        }
        HistoryScope::Type(rt) => {
            let reach = require(access, Interaction::History, rt)?;
            if !reach.is_unrestricted() {
                return Err(StoreError::Forbidden(format!(
                    "the history of all {rt} resources is not available to a token limited to a patient or by constraints; ask for one resource's history"
                )));
            }
            inner.history(scope, query)
        }
        HistoryScope::Instance(rt, id) => {
            let reach = require(access, Interaction::History, rt)?;
            let mut page = inner.history(scope, query)?;
            if reach.is_unrestricted() {
                return Ok(page);
            }
            let before = page.entries.len();
            page.entries
                .retain(|v| v.body.as_ref().is_none_or(|b| visible(&reach, rt, id, b)));
            // Deletion markers only beside versions the caller may see.
            if !page.entries.iter().any(|v| v.body.is_some()) {
                page.entries.clear();
            }
            if page.entries.len() != before && page.next.is_none() {
                page.total = page.entries.len() as u64;
            }
            Ok(page)
        }
    }
}

/// A read session seen through `access`.
pub struct GuardedRead<'a> {
    pub(crate) inner: &'a mut dyn ReadSession,
    pub(crate) access: &'a Access,
    /// Searches of a type the caller may not search find nothing instead of failing.
    pub(crate) omit_denied: bool,
}

/// The read side of both guarded sessions: every method goes through the shared checks above.
macro_rules! guarded_read_session {
    ($session:ident) => {
        impl ReadSession for $session<'_> {
            fn read(&mut self, rt: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
                guarded_read(self.inner, self.access, Interaction::Read, rt, id, None)
            }

            fn vread(
                &mut self,
                rt: &str,
                id: &str,
                version: i64,
            ) -> Result<Option<ResourceVersion>, StoreError> {
                guarded_read(
                    self.inner,
                    self.access,
                    Interaction::Vread,
                    rt,
                    id,
                    Some(version),
                )
            }

            fn history(
                &mut self,
                scope: HistoryScope<'_>,
                query: &HistoryQuery,
            ) -> Result<HistoryPage, StoreError> {
                guarded_history(self.inner, self.access, scope, query)
            }

            fn search(
                &mut self,
                rt: Option<&str>,
                query: &SearchQuery,
            ) -> Result<SearchPage, StoreError> {
                let query = restrict_query(self.access, rt, query, self.omit_denied)?;
                self.inner.search(rt, &query)
            }

            fn search_raw(
                &mut self,
                rt: Option<&str>,
                query: &SearchQuery,
            ) -> Result<RawPage, StoreError> {
                let query = restrict_query(self.access, rt, query, self.omit_denied)?;
                self.inner.search_raw(rt, &query)
            }

            fn scan_raw(
                &mut self,
                rt: Option<&str>,
                query: &SearchQuery,
                each: &mut dyn FnMut(RawResource) -> Result<bool, StoreError>,
            ) -> Result<(), StoreError> {
                let query = restrict_query(self.access, rt, query, self.omit_denied)?;
                self.inner.scan_raw(rt, &query, each)
            }
        }
    };
}

guarded_read_session!(GuardedRead);

/// A write session seen through `access`: reads as [`GuardedRead`], and every write checked
/// against the interaction it turns out to be (create or update) and the caller's reach, for
/// the resource as it is and as it will be.
pub struct GuardedWrite<'a> {
    pub(crate) inner: &'a mut dyn WriteSession,
    pub(crate) access: &'a Access,
    pub(crate) omit_denied: bool,
}

impl GuardedWrite<'_> {
    fn check_put(
        &mut self,
        rt: &str,
        id: &str,
        body: &Value,
        entries: &[IndexEntry],
    ) -> Result<(), StoreError> {
        if self.access.is_open() {
            return Ok(());
        }
        let create = self.access.reach(&Interaction::Create, rt);
        let update = self.access.reach(&Interaction::Update, rt);
        if matches!((&create, &update), (Ok(c), Ok(u)) if c.is_unrestricted() && u.is_unrestricted())
        {
            return Ok(());
        }
        let current = self.inner.read(rt, id)?;
        let existing = current.as_ref().and_then(|v| v.body.as_ref());
        let (interaction, reach) = match existing {
            Some(_) => (Interaction::Update, update),
            None => (Interaction::Create, create),
        };
        let reach = reach.map_err(|reason| refused(&interaction, rt, reason))?;
        if let Some(old) = existing
            && !visible(&reach, rt, id, old)
        {
            return Err(refused(
                &interaction,
                rt,
                "the resource is outside the token's reach",
            ));
        }
        if !writable(&reach, rt, id, body, entries) {
            return Err(refused(
                &interaction,
                rt,
                "the resource would be outside the token's patient compartment or scope constraints",
            ));
        }
        Ok(())
    }
}

guarded_read_session!(GuardedWrite);

impl WriteSession for GuardedWrite<'_> {
    fn tx(&self) -> TxId {
        self.inner.tx()
    }

    fn timestamp_us(&self) -> i64 {
        self.inner.timestamp_us()
    }

    fn put_extracted(
        &mut self,
        rt: &str,
        id: &str,
        body: Value,
        entries: Vec<IndexEntry>,
        precondition: Precondition,
    ) -> Result<WriteOutcome, StoreError> {
        self.check_put(rt, id, &body, &entries)?;
        self.inner
            .put_extracted(rt, id, body, entries, precondition)
    }

    fn put_extracted_many(
        &mut self,
        items: Vec<ExtractedPut>,
    ) -> Result<Vec<Result<WriteOutcome, StoreError>>, StoreError> {
        let mut allowed = Vec::with_capacity(items.len());
        for item in &items {
            allowed.push(self.check_put(&item.resource_type, &item.id, &item.body, &item.entries));
        }
        if allowed.iter().all(Result::is_ok) {
            return self.inner.put_extracted_many(items);
        }
        Ok(items
            .into_iter()
            .zip(allowed)
            .map(|(p, ok)| {
                ok?;
                self.inner.put_extracted(
                    &p.resource_type,
                    &p.id,
                    p.body,
                    p.entries,
                    Precondition::None,
                )
            })
            .collect())
    }

    fn delete(
        &mut self,
        rt: &str,
        id: &str,
        precondition: Precondition,
    ) -> Result<Option<ResourceVersion>, StoreError> {
        let reach = require(self.access, Interaction::Delete, rt)?;
        if !reach.is_unrestricted() {
            let current = self.inner.read(rt, id)?;
            let in_reach = current
                .as_ref()
                .and_then(|v| v.body.as_ref())
                .is_some_and(|b| visible(&reach, rt, id, b));
            if !in_reach {
                // Nothing the caller can see is there to delete.
                return Ok(None);
            }
        }
        self.inner.delete(rt, id, precondition)
    }

    fn set_timestamp_us(&mut self, us: i64) -> Result<(), StoreError> {
        self.inner.set_timestamp_us(us)
    }

    fn set_checkpoint(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.inner.set_checkpoint(key, value)
    }

    fn commit(self: Box<Self>) -> Result<TxId, StoreError> {
        // The guard only borrows the session; its owner commits it.
        Err(StoreError::Database(
            "a guarded session is committed by its owner".into(),
        ))
    }
}

/// Runs `work` on `session` seen through `access` (unwrapped when access control is off).
/// With `omit_denied`, a search of a type the caller may not search finds nothing instead of
/// failing (for searches over many types).
pub fn with_read<T>(
    session: &mut dyn ReadSession,
    access: &Access,
    omit_denied: bool,
    work: impl FnOnce(&mut dyn ReadSession) -> T,
) -> T {
    if access.is_open() {
        return work(session);
    }
    let mut guarded = GuardedRead {
        inner: session,
        access,
        omit_denied,
    };
    work(&mut guarded)
}

/// [`with_read`] for a write session.
pub fn with_write<T>(
    session: &mut dyn WriteSession,
    access: &Access,
    work: impl FnOnce(&mut dyn WriteSession) -> T,
) -> T {
    if access.is_open() {
        return work(session);
    }
    let mut guarded = GuardedWrite {
        inner: session,
        access,
        omit_denied: false,
    };
    work(&mut guarded)
}
