"""Mail: MIME parse-once, SMTP (receiving, submission, queue) and IMAP."""
