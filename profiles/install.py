"""`make slurm-profile`: installs profiles/slurm as this user's Snakemake profile `slurm`, so that
`snakemake --profile slurm` finds it, and never overwrites one.

Snakemake looks a profile name up in the working directory, then the user's folder, then the site's:
$XDG_CONFIG_HOME/snakemake (~/.config/snakemake), then the first folder of $XDG_CONFIG_DIRS
(/etc/xdg) plus /snakemake. A `slurm` in either of the last two is left alone and the install refused
(a user's copy would hide the site's); the folders are asked of Snakemake, so they are the ones it reads.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from snakemake.common import get_appdirs

NAME = "slurm"
SOURCE = Path(__file__).resolve().parent / NAME


def main() -> int:
    dirs = get_appdirs()
    user, site = Path(dirs.user_config_dir) / NAME, Path(dirs.site_config_dir) / NAME
    for existing in (user, site):
        if existing.exists():
            print(f"not installed: a Snakemake profile `{NAME}` exists already at {existing} "
                  f"(`snakemake --profile {NAME}` uses it; it is left as it is)", file=sys.stderr)
            return 1
    user.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(SOURCE, user)  # fails, changing nothing, if `user` appeared meanwhile
    print(f"installed {SOURCE} as {user}: edit its EDIT lines, then `snakemake --profile {NAME}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
