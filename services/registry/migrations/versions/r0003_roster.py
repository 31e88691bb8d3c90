"""roster of above-scale enterprises (art. 4) and its import audit

Revision ID: r0003_roster
Revises: r0002_campaigns
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "r0003_roster"
down_revision = "r0002_campaigns"
branch_labels = None
depends_on = None

BigIntPk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # one partition per year, made by the import of the year's first roster (built
        # without its index, which is added before it is attached: much faster than
        # inserting into an index row by row); rows of a year without a partition land
        # in the default partition
        op.execute("""
            CREATE TABLE roster_entries (
                year integer NOT NULL,
                uscc varchar(18) COLLATE "C" NOT NULL,
                name varchar(200) NOT NULL,
                county varchar(6) COLLATE "C" NOT NULL,
                category varchar(32) NOT NULL,
                contact_person varchar(100),
                phone varchar(32),
                email varchar(200),
                CONSTRAINT roster_entries_pkey PRIMARY KEY (year, uscc)
            ) PARTITION BY LIST (year)""")
        op.execute("CREATE TABLE roster_entries_default PARTITION OF roster_entries DEFAULT")
    else:
        op.create_table(
            "roster_entries",
            sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("uscc", sa.String(18), primary_key=True),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("county", sa.String(6), nullable=False),
            sa.Column("category", sa.String(32), nullable=False),
            sa.Column("contact_person", sa.String(100)),
            sa.Column("phone", sa.String(32)),
            sa.Column("email", sa.String(200)),
        )
    op.create_table(
        "roster_imports",
        sa.Column("id", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("file_format", sa.String(8), nullable=False),
        sa.Column("encoding", sa.String(16)),
        sa.Column("years", sa.String(200), nullable=False),
        sa.Column("total_rows", sa.Integer, nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("inserted", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("unchanged", sa.Integer, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("rejected_sample", sa.Text, nullable=False, server_default="[]"),
    )


def downgrade() -> None:
    op.drop_table("roster_imports")
    op.drop_table("roster_entries")  # with its partitions
