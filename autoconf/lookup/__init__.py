"""Per-user lookups: the login (and servers) of one address, from a map file,
PostgreSQL or LDAP (docs/domain-files.md#per-user-logins-and-servers).

A domain file's ``lookup:`` is read into :class:`autoconf.model.Lookup` at load
(:mod:`autoconf.lookup_file`); :mod:`.runtime` asks it per request, bounded in
time and cached; :mod:`.sources` are the map file, PostgreSQL and LDAP.
"""
