// Snappy's C API (Debian's libsnappy-dev): the block format Prometheus remote write bodies use.
#include <snappy-c.h>
