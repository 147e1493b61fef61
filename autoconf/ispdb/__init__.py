"""Importing Thunderbird ISPDB files (clientConfig 1.1 XML) as domain YAML (docs/cli.md#import).

:func:`convert` is pure: one parsed clientConfig document in, the text of a domain
file and the list of changes the import made out. :func:`import_main` is the
command around it: XML files in, YAML files out, warnings on stderr, an exit code.

Every value is checked with the same readers ``check`` uses (:mod:`autoconf.schema`),
so that an imported file is valid by construction; what cannot be made valid is
left out with a warning. docs/domain-files.md ("Importing Thunderbird ISPDB
files") lists every change an import makes; keep the two in step.

The modules, in the order an import uses them:

- :mod:`~autoconf.ispdb.document`: the hardened parser, the element helpers,
  the :class:`Notes` of one import and :class:`ImportFailed`;
- :mod:`~autoconf.ispdb.values`: single values checked as ``check`` checks them,
  placeholder typos corrected;
- :mod:`~autoconf.ispdb.servers`: <incomingServer> and <outgoingServer>;
- :mod:`~autoconf.ispdb.provider`: the provider and the blocks beside its servers,
  :func:`domain_data`;
- :mod:`~autoconf.ispdb.command`: the YAML text (:func:`to_yaml`, :func:`convert`)
  and ``mail-autoconf import`` (:func:`convert_file`, :func:`file_names`,
  :func:`import_main`).

This package re-exports the public names of all of them.
"""

from autoconf.ispdb.command import (
    MAX_FILE_BYTES,
    Converted,
    Failed,
    UsageError,
    convert,
    convert_file,
    file_names,
    import_main,
    to_yaml,
)
from autoconf.ispdb.document import Data, ImportFailed, Notes, parse
from autoconf.ispdb.provider import OAUTH2_FIELDS, domain_data
from autoconf.ispdb.servers import (
    AUTH_NAMES,
    INCOMING_TYPES,
    OUTGOING_TYPES,
    POP3_DAYS,
    POP3_FLAGS,
    SOCKET_TYPES,
)
from autoconf.ispdb.values import fix_placeholders

__all__ = [
    "AUTH_NAMES",
    "INCOMING_TYPES",
    "MAX_FILE_BYTES",
    "OAUTH2_FIELDS",
    "OUTGOING_TYPES",
    "POP3_DAYS",
    "POP3_FLAGS",
    "SOCKET_TYPES",
    "Converted",
    "Data",
    "Failed",
    "ImportFailed",
    "Notes",
    "UsageError",
    "convert",
    "convert_file",
    "domain_data",
    "file_names",
    "fix_placeholders",
    "import_main",
    "parse",
    "to_yaml",
]
