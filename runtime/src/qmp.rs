//! QMP monitor subset (see qmp.rs).
