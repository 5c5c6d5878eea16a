//! A statement builder, so that statements with a variable number of rows are still written
//! once. Placeholders are `$N` on PostgreSQL and anonymous `?` on SQLite: SQLite resolves each
//! named parameter by a linear search, which makes binding a batch of thousands of parameters
//! quadratic, while anonymous ones bind by position. Both number arguments in order of
//! appearance, so the same builder calls produce equivalent statements.

use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, Encode, Type};

use crate::Backend;

/// Accumulates SQL text and its bound arguments.
pub struct SqlBuilder {
    backend: Backend,
    sql: String,
    args: AnyArguments<'static>,
    bound: usize,
}

impl SqlBuilder {
    pub fn new(backend: Backend, sql: &str) -> SqlBuilder {
        SqlBuilder {
            backend,
            sql: sql.to_owned(),
            args: AnyArguments::default(),
            bound: 0,
        }
    }

    /// Appends literal SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder and binds `value` to it.
    pub fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'static, Any> + Type<Any> + 'static,
    {
        self.bound += 1;
        match self.backend {
            Backend::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.bound.to_string());
            }
            Backend::Sqlite => self.sql.push('?'),
        }
        self.args
            .add(value)
            .expect("encoding an owned scalar into AnyArguments cannot fail");
        self
    }

    /// Appends `(v1, v2, …)` for a list of values, for `IN (…)` clauses.
    pub fn bind_list<T, I>(&mut self, values: I) -> &mut Self
    where
        I: IntoIterator<Item = T>,
        T: Encode<'static, Any> + Type<Any> + 'static,
    {
        self.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self.push(")")
    }

    /// How many arguments are bound so far.
    pub fn bound(&self) -> usize {
        self.bound
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The finished statement and its arguments.
    pub fn build(self) -> (String, AnyArguments<'static>) {
        (self.sql, self.args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(backend: Backend) -> SqlBuilder {
        let mut b = SqlBuilder::new(backend, "SELECT * FROM t WHERE a = ");
        b.bind(1_i64)
            .push(" AND b IN ")
            .bind_list(["x".to_owned(), "y".to_owned()]);
        b
    }

    #[test]
    fn placeholders_are_numbered_in_order_on_postgres() {
        let b = build(Backend::Postgres);
        assert_eq!(b.sql(), "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)");
        assert_eq!(b.bound(), 3);
    }

    #[test]
    fn placeholders_are_positional_on_sqlite() {
        let b = build(Backend::Sqlite);
        assert_eq!(b.sql(), "SELECT * FROM t WHERE a = ? AND b IN (?, ?)");
        assert_eq!(b.bound(), 3);
    }
}
