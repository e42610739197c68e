//! PostgreSQL storage (being written).
