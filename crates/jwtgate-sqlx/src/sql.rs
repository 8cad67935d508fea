//! The SQL of the directory, written once from the table mapping. Table and column names were
//! checked to be identifiers (`DirectorySettings::check`) and are quoted; every value is a
//! bound parameter, never part of the text. A column the mapping leaves out is neither read
//! (`NULL` in its place) nor written, and its parameter is not bound.

use crate::settings::{ContactsTable, UsersTable};
use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;

/// A value a statement binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Param {
    Email,
    EmailKey,
    Issuer,
    Subject,
    Service,
    Now,
    FirstName,
    LastName,
    FullName,
    Phone,
    UserId,
    ContactId,
    Limit,
    Complete,
}

/// The values of one call; a statement binds those it names.
#[derive(Debug, Default)]
pub(crate) struct Values<'a> {
    pub(crate) email: Option<&'a str>,
    pub(crate) email_key: Option<&'a str>,
    pub(crate) issuer: Option<&'a str>,
    pub(crate) subject: Option<&'a str>,
    pub(crate) service: Option<&'a str>,
    pub(crate) now: i64,
    pub(crate) first_name: Option<&'a str>,
    pub(crate) last_name: Option<&'a str>,
    pub(crate) full_name: Option<&'a str>,
    pub(crate) phone: Option<&'a str>,
    pub(crate) user_id: i64,
    pub(crate) contact_id: i64,
    pub(crate) limit: i64,
    pub(crate) complete: bool,
}

/// One statement and the values it binds, in order.
#[derive(Debug)]
pub(crate) struct Stmt {
    pub(crate) sql: String,
    params: Vec<Param>,
}

impl Stmt {
    /// The query with its values bound.
    pub(crate) fn bind<'q>(&'q self, v: &Values<'q>) -> Query<'q, Any, AnyArguments<'q>> {
        let mut query = sqlx::query(&self.sql);
        for p in &self.params {
            query = match p {
                Param::Email => query.bind(v.email),
                Param::EmailKey => query.bind(v.email_key),
                Param::Issuer => query.bind(v.issuer),
                Param::Subject => query.bind(v.subject),
                Param::Service => query.bind(v.service),
                Param::Now => query.bind(v.now),
                Param::FirstName => query.bind(v.first_name),
                Param::LastName => query.bind(v.last_name),
                Param::FullName => query.bind(v.full_name),
                Param::Phone => query.bind(v.phone),
                Param::UserId => query.bind(v.user_id),
                Param::ContactId => query.bind(v.contact_id),
                Param::Limit => query.bind(v.limit),
                Param::Complete => query.bind(v.complete),
            };
        }
        query
    }
}

/// Writes a statement, numbering parameters as they are used.
#[derive(Default)]
struct Writer {
    params: Vec<Param>,
}

impl Writer {
    fn p(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    fn done(self, sql: String) -> Stmt {
        Stmt {
            sql,
            params: self.params,
        }
    }
}

fn q(name: &str) -> String {
    format!("\"{name}\"")
}

/// SQL for the email key of `column`, as `jwtgate::directory::normalize_email` makes it:
/// spaces trimmed (SQL `trim()` trims those alone), ASCII letters lowercased and nothing else.
/// SQLite's `lower()` is ASCII-only; Postgres lowercases by the database's locale (the Kelvin
/// sign `\u{212A}` becomes `k`), unless told the "C" collation, which is ASCII-only.
fn email_key(column: &str, postgres: bool) -> String {
    if postgres {
        format!("lower(trim({column}) COLLATE \"C\")")
    } else {
        format!("lower(trim({column}))")
    }
}

fn opt(column: Option<&String>) -> String {
    column.map_or_else(|| "NULL".to_owned(), |c| q(c))
}

/// Every statement the directory runs.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) user_by_email_key: Stmt,
    pub(crate) user_by_subject: Option<Stmt>,
    pub(crate) user_by_service: Option<Stmt>,
    pub(crate) user_by_id: Stmt,
    pub(crate) list_users: Stmt,
    /// A new user, nothing on any unique conflict, returning the new id.
    pub(crate) insert_user: Stmt,
    /// Links the user with an email key to an issuer and subject when it has neither yet.
    pub(crate) link_subject: Option<Stmt>,
    pub(crate) touch: Option<Stmt>,
    /// Copies a contact's names and phone; the profile is complete when it has a first name.
    pub(crate) fill_from_contact: Stmt,
    /// Sets first, last and full name and marks the profile complete.
    pub(crate) complete_profile: Stmt,
    pub(crate) contacts_by_email: Stmt,
    pub(crate) link_contact: Option<Stmt>,
}

impl Statements {
    /// The statements for this mapping; `postgres` picks that database's spelling where the
    /// two differ.
    pub(crate) fn new(users: &UsersTable, contacts: &ContactsTable, postgres: bool) -> Self {
        let ut = q(&users.table);
        let id = q(&users.id);
        let complete = users.profile_complete.as_ref().map_or_else(
            || "1".to_owned(),
            |c| format!("CASE WHEN {} THEN 1 ELSE 0 END", q(c)),
        );
        let select = format!(
            "SELECT CAST({id} AS BIGINT), {}, {}, {}, {}, {}, CAST({complete} AS BIGINT) FROM {ut}",
            q(&users.email),
            opt(users.first_name.as_ref()),
            opt(users.last_name.as_ref()),
            opt(users.full_name.as_ref()),
            opt(users.phone.as_ref()),
        );
        let by = |column: &str, param: Param| {
            let mut w = Writer::default();
            let sql = format!("{select} WHERE {} = {}", q(column), w.p(param));
            w.done(sql)
        };

        let user_by_subject = match (&users.issuer, &users.subject) {
            (Some(i), Some(s)) => {
                let mut w = Writer::default();
                let sql = format!(
                    "{select} WHERE {} = {} AND {} = {}",
                    q(i),
                    w.p(Param::Issuer),
                    q(s),
                    w.p(Param::Subject)
                );
                Some(w.done(sql))
            }
            _ => None,
        };

        let insert_user = {
            let mut w = Writer::default();
            let mut columns = Vec::new();
            let mut values = Vec::new();
            for (column, param) in [
                (Some(&users.email), Param::Email),
                (Some(&users.email_key), Param::EmailKey),
                (users.issuer.as_ref(), Param::Issuer),
                (users.subject.as_ref(), Param::Subject),
                (users.service_name.as_ref(), Param::Service),
                (users.created_at.as_ref(), Param::Now),
                (users.last_seen_at.as_ref(), Param::Now),
            ] {
                if let Some(c) = column {
                    columns.push(q(c));
                    values.push(w.p(param));
                }
            }
            if let Some(c) = &users.profile_complete {
                columns.push(q(c));
                values.push("FALSE".to_owned());
            }
            let sql = format!(
                "INSERT INTO {ut} ({}) VALUES ({}) ON CONFLICT DO NOTHING RETURNING CAST({id} AS BIGINT)",
                columns.join(", "),
                values.join(", "),
            );
            w.done(sql)
        };

        let names = [
            (&users.first_name, Param::FirstName),
            (&users.last_name, Param::LastName),
            (&users.full_name, Param::FullName),
        ];
        let update_names = |with_phone: bool, complete: Option<&str>| -> Stmt {
            let mut w = Writer::default();
            let mut sets = Vec::new();
            for (column, param) in names {
                if let Some(c) = column {
                    sets.push(format!("{} = {}", q(c), w.p(param)));
                }
            }
            if with_phone && let Some(c) = &users.phone {
                sets.push(format!("{} = {}", q(c), w.p(Param::Phone)));
            }
            if let (Some(c), Some(value)) = (&users.profile_complete, complete) {
                let value = if value == "$" {
                    w.p(Param::Complete)
                } else {
                    value.to_owned()
                };
                sets.push(format!("{} = {value}", q(c)));
            }
            if sets.is_empty() {
                sets.push(format!("{id} = {id}"));
            }
            let sql = format!(
                "UPDATE {ut} SET {} WHERE {id} = {}",
                sets.join(", "),
                w.p(Param::UserId)
            );
            w.done(sql)
        };

        let ct = q(&contacts.table);
        let contacts_by_email = {
            let mut w = Writer::default();
            let sql = format!(
                "SELECT CAST({cid} AS BIGINT), {}, {}, {} FROM {ct} WHERE {} = {} ORDER BY {cid} LIMIT 100",
                opt(contacts.first_name.as_ref()),
                opt(contacts.last_name.as_ref()),
                opt(contacts.phone.as_ref()),
                email_key(&q(&contacts.email), postgres),
                w.p(Param::EmailKey),
                cid = q(&contacts.id),
            );
            w.done(sql)
        };

        Self {
            user_by_email_key: by(&users.email_key, Param::EmailKey),
            user_by_subject,
            user_by_service: users.service_name.as_ref().map(|c| by(c, Param::Service)),
            user_by_id: by(&users.id, Param::UserId),
            list_users: {
                let mut w = Writer::default();
                let sql = format!("{select} ORDER BY {id} LIMIT {}", w.p(Param::Limit));
                w.done(sql)
            },
            insert_user,
            link_subject: match (&users.issuer, &users.subject) {
                (Some(i), Some(s)) => {
                    let mut w = Writer::default();
                    let sql = format!(
                        "UPDATE {ut} SET {i} = {}, {s} = {} WHERE {} = {} AND {i} IS NULL AND {s} IS NULL",
                        w.p(Param::Issuer),
                        w.p(Param::Subject),
                        q(&users.email_key),
                        w.p(Param::EmailKey),
                        i = q(i),
                        s = q(s),
                    );
                    Some(w.done(sql))
                }
                _ => None,
            },
            touch: users.last_seen_at.as_ref().map(|c| {
                let mut w = Writer::default();
                let sql = format!(
                    "UPDATE {ut} SET {} = {} WHERE {id} = {}",
                    q(c),
                    w.p(Param::Now),
                    w.p(Param::UserId)
                );
                w.done(sql)
            }),
            // "$": whether the contact gives a complete profile is a bound value.
            fill_from_contact: update_names(true, Some("$")),
            complete_profile: update_names(false, Some("TRUE")),
            contacts_by_email,
            link_contact: contacts.user_id.as_ref().map(|c| {
                let mut w = Writer::default();
                let sql = format!(
                    "UPDATE {ct} SET {c} = {} WHERE {} = {} AND {c} IS NULL",
                    w.p(Param::UserId),
                    q(&contacts.id),
                    w.p(Param::ContactId),
                    c = q(c),
                );
                w.done(sql)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_schema_reads_every_column_and_binds_values() {
        let s = Statements::new(&UsersTable::default(), &ContactsTable::default(), true);
        assert!(
            s.contacts_by_email
                .sql
                .contains("WHERE lower(trim(\"email\") COLLATE \"C\") = $1"),
            "Postgres lowercases ASCII only: {}",
            s.contacts_by_email.sql
        );
        let sqlite = Statements::new(&UsersTable::default(), &ContactsTable::default(), false);
        assert!(
            sqlite
                .contacts_by_email
                .sql
                .contains("WHERE lower(trim(\"email\")) = $1")
        );
        assert_eq!(
            s.user_by_email_key.sql,
            "SELECT CAST(\"id\" AS BIGINT), \"email\", \"first_name\", \"last_name\", \"full_name\", \"phone\", CAST(CASE WHEN \"profile_complete\" THEN 1 ELSE 0 END AS BIGINT) FROM \"jwtgate_users\" WHERE \"email_key\" = $1"
        );
        assert_eq!(
            s.insert_user.sql,
            "INSERT INTO \"jwtgate_users\" (\"email\", \"email_key\", \"issuer\", \"subject\", \"service_name\", \"created_at\", \"last_seen_at\", \"profile_complete\") VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE) ON CONFLICT DO NOTHING RETURNING CAST(\"id\" AS BIGINT)"
        );
        assert_eq!(s.insert_user.params.len(), 7);
    }

    #[test]
    fn a_mapping_without_optional_columns_neither_reads_nor_writes_them() {
        let users = UsersTable::mapped("accounts", "account_id", "mail", "mail_key");
        let contacts = ContactsTable::mapped("people", "pid", "mail");
        let s = Statements::new(&users, &contacts, true);
        assert!(s.user_by_subject.is_none() && s.user_by_service.is_none() && s.touch.is_none());
        assert!(s.link_contact.is_none());
        assert_eq!(
            s.insert_user.sql,
            "INSERT INTO \"accounts\" (\"mail\", \"mail_key\") VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING CAST(\"account_id\" AS BIGINT)"
        );
        assert!(
            s.user_by_id
                .sql
                .contains("NULL, NULL, NULL, NULL, CAST(1 AS BIGINT)")
        );
        assert_eq!(
            s.complete_profile.sql,
            "UPDATE \"accounts\" SET \"account_id\" = \"account_id\" WHERE \"account_id\" = $1"
        );
    }
}
