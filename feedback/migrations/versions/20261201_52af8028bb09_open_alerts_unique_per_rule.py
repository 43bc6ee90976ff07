"""open alerts unique per rule

Several processes could each open an episode of the same rule; the database now keeps one.
Open duplicates already there are resolved first (the newest open one per rule stays).

Revision ID: 52af8028bb09
Revises: 88c6f1fabeec
Create Date: 2026-12-01 05:01:43.324787
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '52af8028bb09'
down_revision: str | Sequence[str] | None = '88c6f1fabeec'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text(
        "UPDATE alerts SET state = 'resolved', resolved_at = updated_at "
        "WHERE state = 'open' AND id NOT IN "
        "(SELECT max(id) FROM alerts WHERE state = 'open' GROUP BY rule)"))
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('uq_alerts_open_rule', ['rule'], unique=True,
                              sqlite_where=sa.text("state = 'open'"),
                              postgresql_where=sa.text("state = 'open'"))


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_alerts_open_rule')
