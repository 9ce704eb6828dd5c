"""Files written so that nothing already written is lost: on failure, interruption or a
concurrent run.

- `atomic`: write beside the target, then rename (`atomic_open`, `publish`, `replace_path`);
  a folder put in place lists its files (`MANIFEST`).
- `temporaries`: the hidden temporaries beside an output, and removing those a killed process
  left.
- `checks`: `check_output`, the one rule of every writer that may replace an earlier output.
- `locks`: `locked`, the lock of a read-modify-write cycle across processes (a results file).
- `work`: a resumable verb's work folder and the lock one run holds on it (`held`).
- `signals`: Ctrl-C, SIGTERM and SIGHUP held while an output is put in place.
- `os_errors`: a file-system error as one line naming the user's path.
- `reading`: reading what dive wrote (one save of a swapped folder, JSON, no pipes).
- `args`: the paths and yes/no options a caller passes.

The names callers use are imported here.
"""

from dive._io.args import (
    as_path,
    cache_base,
    check_flag,
    check_overwrite,
    refuse_folder_form,
    user_path,
)
from dive._io.atomic import (
    MANIFEST,
    atomic_open,
    atomic_write_bytes,
    atomic_write_text,
    made_folder,
    new_file_mode,
    publish,
    replace_path,
)
from dive._io.checks import check_output, check_suffix, check_writable
from dive._io.locks import LOCK_QUIET_SECONDS, locked, resolve_link
from dive._io.os_errors import describe_os_error, naming_os_errors, os_error_in_text
from dive._io.reading import (
    not_a_file,
    parse_json,
    parse_json_object,
    read_one_save,
    refuse_special_file,
)
from dive._io.signals import (
    mark_written_before,
    nothing_finished,
    nothing_finished_unless,
    publishing,
    reached_the_work,
    uninterrupted,
    written_before,
)
from dive._io.temporaries import (
    DEAD_AFTER,
    is_temporary_name,
    named,
    remove_dead_temporaries,
    staging,
    temporary,
)
from dive._io.work import clear_work_folder, held, work_folder

__all__ = [
    "DEAD_AFTER", "LOCK_QUIET_SECONDS", "MANIFEST", "as_path", "atomic_open", "atomic_write_bytes",
    "atomic_write_text", "cache_base", "check_flag", "check_output", "check_overwrite",
    "check_suffix", "check_writable", "clear_work_folder", "describe_os_error",
    "held", "is_temporary_name", "locked", "made_folder", "mark_written_before", "named",
    "naming_os_errors", "new_file_mode", "not_a_file", "nothing_finished",
    "nothing_finished_unless", "os_error_in_text", "parse_json", "parse_json_object", "publish",
    "publishing", "reached_the_work", "read_one_save", "refuse_folder_form", "refuse_special_file",
    "remove_dead_temporaries", "replace_path", "resolve_link", "staging", "temporary",
    "uninterrupted", "user_path", "work_folder", "written_before",
]
