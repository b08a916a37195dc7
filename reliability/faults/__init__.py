"""Fault scenarios for taskapp (Redis stopped, PostgreSQL restarted, Celery worker killed
mid-sweep), each against throwaway servers of its own. Run: ``python -m reliability.faults``."""
