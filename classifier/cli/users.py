"""`python -m classifier users`: the local accounts people sign in to the web UI with.

    python -m classifier users add NAME --role reviewer     # asks for the password twice
    echo "$PASSWORD" | python -m classifier users add NAME --role admin --password-stdin
    python -m classifier users list | set-role NAME ROLE | set-password NAME | disable NAME

Passwords are never taken as arguments (they would land in the shell history and the process
list): they come from a prompt or from standard input.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from feedback import accounts
from feedback.db import session_scope
from feedback.errors import InvalidInputError
from feedback.settings import Settings

COMMANDS = frozenset({"users"})


def add_commands(sub: Any) -> None:
    users = sub.add_parser("users", help="local accounts for signing in to the web UI")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="create an account (asks for its password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=accounts.ROLES)
    users_sub.add_parser("list", help="list accounts and their roles")
    set_role = users_sub.add_parser("set-role", help="change a role (ends open sign-ins)")
    set_role.add_argument("name")
    set_role.add_argument("role", choices=accounts.ROLES)
    set_password = users_sub.add_parser("set-password",
                                        help="change a password (re-enables the account)")
    set_password.add_argument("name")
    disable = users_sub.add_parser("disable", help="disable an account (ends its sign-ins)")
    disable.add_argument("name")
    for command in (add, set_password):
        command.add_argument("--password-stdin", action="store_true",
                             help="read the password from the first line of standard input")


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InvalidInputError("No terminal to ask for the password: pass --password-stdin "
                                "and send the password on standard input.")
    first = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("Again: ") != first:
        raise InvalidInputError("The two passwords differ; nothing was changed.")
    return first


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    command = args.users_command
    password = _read_password(args) if command in ("add", "set-password") else ""
    with session_scope(settings) as session:
        if command == "add":
            info = accounts.create_account(session=session, username=args.name,
                                           role=args.role, password=password)
            print(f"Account {info.username} ({info.role}) created; sign in at /sign-in.")
        elif command == "set-role":
            info = accounts.set_role(session=session, username=args.name, role=args.role)
            print(f"{info.username} is now {info.role}; their open sign-ins ended.")
        elif command == "set-password":
            info = accounts.set_password(session=session, username=args.name,
                                         password=password)
            print(f"Password of {info.username} changed; their open sign-ins ended.")
        elif command == "disable":
            info = accounts.disable_account(session=session, username=args.name)
            print(f"{info.username} is disabled; running apps refuse them within seconds.")
        else:
            rows = accounts.list_accounts(session=session)
            if not rows:
                print("No accounts. Create one: python -m classifier users add NAME "
                      "--role reviewer")
            for a in rows:
                state = "disabled" if a.disabled_at else "active"
                print(f"{a.username:30} {a.role:9} {state:9} created "
                      f"{a.created_at:%Y-%m-%d %H:%M} UTC")
    return 0
