//! eddy-core
