pub mod r4_model;
