// libyaml (Debian's libyaml-dev): reads the web configuration file. The system's copy, not one built in: a
// Debian package links its distribution's libraries.
#include <yaml.h>
