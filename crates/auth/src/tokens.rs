pub use crate::policy::Principal;
