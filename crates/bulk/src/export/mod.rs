//! Bulk export (in progress).
