//! PostgreSQL sink, source and grid map store for Eddy.
