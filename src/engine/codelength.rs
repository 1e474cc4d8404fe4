//! Code length of a text under a model, in bits: the measurement lives in
//! [`crate::train::codelength`] (specialist routing in `train/` needs it, and `train` sits
//! below `engine`); it is re-exported here for the faces and the tests that reach it through
//! the engine.

pub use crate::train::codelength::code_length_bits;
