"""feedback: the rated prediction's time and version, for ratings per version in a window

The Monitoring tab's ratings-per-version figure joined every prediction of the window with
its rating: 2.4 s for 30 days of 10 M predictions on PostgreSQL. The two values never change
after the prediction is written, so they are copied onto the rating and indexed; existing
ratings get them from their predictions here.

Revision ID: 7c1d2e3f4a5b
Revises: 52af8028bb09
Create Date: 2026-12-01 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '7c1d2e3f4a5b'
down_revision: str | Sequence[str] | None = '52af8028bb09'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prediction_created_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('model_version', sa.Integer(), nullable=True))
    op.execute(sa.text(
        "UPDATE feedback SET "
        "prediction_created_at = (SELECT p.created_at FROM predictions p "
        "WHERE p.id = feedback.prediction_id), "
        "model_version = (SELECT p.model_version FROM predictions p "
        "WHERE p.id = feedback.prediction_id)"))
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.alter_column('prediction_created_at', existing_type=sa.DateTime(),
                              nullable=False)
        batch_op.create_index('ix_feedback_window',
                              ['prediction_created_at', 'model_version', 'verdict'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_window')
        batch_op.drop_column('model_version')
        batch_op.drop_column('prediction_created_at')
