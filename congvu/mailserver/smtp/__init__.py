"""SMTP: aiosmtpd handlers for MX and submission, delivery, outbound queue, DKIM/SPF/DMARC."""
