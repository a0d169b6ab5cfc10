//! Unit tests of the conversion engine.
