"""A handler is added to a logger on every job and never removed."""

import logging

EXPECTED = {
    "leak": True,
    "category": "listener",
    "site": "leak_logging_handlers.py#logging",
    "root": "app.jobs",
}

log = logging.getLogger("app.jobs")
log.propagate = False
log.setLevel(logging.WARNING)


class JobHandler(logging.Handler):
    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        self.context = f"job {job_id} context " + "c" * 1200  # leak-site: logging

    def emit(self, record: logging.LogRecord) -> None:
        pass


def run_job(i: int) -> None:
    log.addHandler(JobHandler(i))
    log.info("job %d done", i)


def step(i: int) -> None:
    run_job(i)
