//! Streaming one type out of the store page by page. Several queries on one type (`_typeFilter`
//! alternatives, or chunks of a large Group's patient list) are merged by the store's key
//! order, so their union comes out without duplicates while only one page per query is held in
//! memory.

use std::collections::VecDeque;

use medicus_store::search::SearchQuery;
use medicus_store::{RawResource, ReadSession, StoreError};

/// One query being paged through.
struct Stream {
    query: SearchQuery,
    buffer: VecDeque<RawResource>,
    exhausted: bool,
}

/// The union of several queries on one type, in increasing key order.
pub struct MergedScan<'q> {
    resource_type: &'q str,
    streams: Vec<Stream>,
}

impl<'q> MergedScan<'q> {
    /// `page_size` is split between the queries so memory stays the same however many there are.
    pub fn new(resource_type: &'q str, queries: Vec<SearchQuery>, page_size: usize) -> Self {
        let per_stream = (page_size / queries.len().max(1)).max(10);
        let streams = queries
            .into_iter()
            .map(|mut query| {
                query.count = per_stream;
                query.total = false;
                query.cursor = None;
                Stream {
                    query,
                    buffer: VecDeque::new(),
                    exhausted: false,
                }
            })
            .collect();
        MergedScan {
            resource_type,
            streams,
        }
    }

    /// The next resource, or `None` at the end. Fetches the next page of a query when its
    /// buffer runs empty.
    pub fn next(
        &mut self,
        session: &mut dyn ReadSession,
    ) -> Result<Option<RawResource>, StoreError> {
        for s in &mut self.streams {
            if s.buffer.is_empty() && !s.exhausted {
                let page = session.search_raw(Some(self.resource_type), &s.query)?;
                s.query.cursor = page.next_cursor;
                s.exhausted = page.next_cursor.is_none();
                s.buffer = page.resources.into();
            }
        }
        let Some(min) = self
            .streams
            .iter()
            .filter_map(|s| s.buffer.front().map(|r| r.key))
            .min()
        else {
            return Ok(None);
        };
        let mut found = None;
        for s in &mut self.streams {
            if s.buffer.front().is_some_and(|r| r.key == min) {
                let r = s.buffer.pop_front();
                found = found.or(r);
            }
        }
        Ok(found)
    }
}
