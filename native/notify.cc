// sd_notify over a unix datagram socket; Node has no AF_UNIX/SOCK_DGRAM of its own.
#include "notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace xpole {

std::string sendNotify(const std::string& socket, const std::string& state) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.empty() || (socket[0] != '/' && socket[0] != '@'))
    return "NOTIFY_SOCKET must be an absolute path or an abstract '@name', got '" + socket + "'";
  if (socket.size() > sizeof(addr.sun_path) - (socket[0] == '/' ? 1 : 0))
    return "NOTIFY_SOCKET is longer than a unix socket address allows (" + std::to_string(sizeof(addr.sun_path)) + " bytes)";
  std::memcpy(addr.sun_path, socket.data(), socket.size());
  if (socket[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace: no trailing NUL in the length
  socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + socket.size() + (socket[0] == '/' ? 1 : 0));

  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket(AF_UNIX, SOCK_DGRAM): ") + std::strerror(errno);
  ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
  int err = errno;
  ::close(fd);
  if (sent < 0) return "sendto " + socket + ": " + std::strerror(err);
  if (size_t(sent) != state.size()) return "sendto " + socket + ": short write";
  return "";
}

}  // namespace xpole
