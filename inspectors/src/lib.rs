//! Guest inspection: partitions, volumes, filesystems, OS facts.
