//! Bulk import (in progress).
