"""The office's web console: the campaign live in a browser, in Chinese, with the office's
actions (`mailproc serve`, or inside `mailproc run`). users.py: who may log in and what they may
do; web.py: the pages, the forms and the security around them; forms.py: a form posted to
/actions/<name> turned into the same office function the command line calls."""
