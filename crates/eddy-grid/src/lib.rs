//! eddy-grid
