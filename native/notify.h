// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.
#pragma once
#include <string>

namespace xpole {

// Sends `state` to the unix datagram socket `socket` (a path, or '@name' for the abstract namespace).
// Returns an empty string on success, else what went wrong.
std::string sendNotify(const std::string& socket, const std::string& state);

}  // namespace xpole
