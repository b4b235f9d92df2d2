// libsystemd, as Debian's libsystemd-dev installs it: socket activation, sd_notify, journal.
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/uio.h>
