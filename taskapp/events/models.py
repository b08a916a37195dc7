"""The activity log's commit order, and the single-use tickets that open the event stream."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from taskapp.models import Base, UTCDateTime


class CommitPosition(Base):
    """PostgreSQL: one row per transaction that wrote activity-log entries, ``seq`` in
    commit order (a deferred trigger under an advisory lock, migration 0008); entries
    join it by ``xid``. Read by the live-changes feed and stream (events/log.py)."""

    __tablename__ = "commit_position"

    seq: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    xid: Mapped[int] = mapped_column(BigInteger)


class StreamTicket(Base):
    """A single-use, short-lived ticket to open the event stream from a browser (whose
    EventSource cannot send headers); only its SHA-256 is stored. It carries what the
    credential that asked for it was, so the stream ends when that credential does."""

    __tablename__ = "stream_ticket"
    __table_args__ = (Index("ix_stream_ticket_expires", "expires_at"),)

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    token_version: Mapped[int] = mapped_column(Integer)
    sid: Mapped[str | None] = mapped_column(String(64))
    pat_id: Mapped[int | None] = mapped_column(Integer)
    credential_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
