-- jwtgate's directory: users (found by email or issuer + subject, registered on first sight)
-- and contacts (Odoo's partners, Frappe's Contacts).
CREATE TABLE jwtgate_users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT,
    email_key TEXT UNIQUE,
    issuer TEXT,
    subject TEXT,
    service_name TEXT UNIQUE,
    first_name TEXT,
    last_name TEXT,
    full_name TEXT,
    phone TEXT,
    profile_complete BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    UNIQUE (issuer, subject)
);

CREATE TABLE jwtgate_contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT,
    first_name TEXT,
    last_name TEXT,
    phone TEXT,
    user_id BIGINT REFERENCES jwtgate_users (id)
);

CREATE INDEX jwtgate_contacts_email ON jwtgate_contacts (lower(trim(email)));
