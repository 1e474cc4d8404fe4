//! One file per panel.

pub mod attention;
pub mod audit;
pub mod audit_test_set;
pub mod blocks;
pub mod compare;
pub mod dial;
pub mod generate;
pub mod model;
pub mod recruitment;
mod recruitment_dl;
pub mod rules;
pub mod specialists;
pub mod specialists_grow;
pub mod theory;
pub mod training;
pub mod training_plots;
