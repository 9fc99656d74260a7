#!/usr/bin/env python3
"""config-commented.py SAMPLE OUTPUT: the configuration file a host gets.

/etc/mimalloc-numa.toml (the Debian package's conffile; meson installs it as
<sysconfdir>/mimalloc-numa.toml.example) is the generated sample
(config/mimalloc-numa.toml: every option with its default and a comment)
with every setting commented out: as shipped it changes nothing, so a host
that installs the package runs every program on the built-in defaults, and a
default changed by a later version reaches the hosts whose file was not
edited. Table headers stay live, so that a line uncommented under [options]
is read there; comments and blank lines are kept as they are. A paragraph
after the sample's opening comment says so.
"""
import sys

NOTE = [
    "#",
    "# As installed, every setting in this file is commented out: it changes",
    "# nothing until you uncomment a line (and its table header, where that is",
    "# commented too) and edit the value.",
]


def commented(lines):
    out = []
    noted = False
    for line in lines:
        stripped = line.strip()
        if not noted and not stripped.startswith("#"):
            out += NOTE  # after the opening comment block
            noted = True
        if stripped == "" or stripped.startswith("#") or stripped.startswith("["):
            out.append(line)
        else:
            out.append("# " + line)
    if not noted:
        out += NOTE
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: config-commented.py SAMPLE OUTPUT")
    with open(sys.argv[1], encoding="utf-8") as f:
        lines = f.read().splitlines()
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write("\n".join(commented(lines)) + "\n")


if __name__ == "__main__":
    main()
