/* migrations: the SQL files of sql/, compiled into the binary (build/migrations.c is
 * generated from sql/NNN_*.sql by the Makefile) so that a binary always carries the schema
 * it was built for. */
#pragma once

struct migration {
        const char *version;    /* the file name's number, e.g. "001" */
        const char *name;       /* the file name, e.g. "001_init.sql" */
        const char *sql;
};

/* In version order, terminated by an entry with version NULL. */
extern const struct migration migrations[];
