//! The pure gate: facts + change + policy → verdict (issue #5).
