// The types every coroutine of the data path is written with: one io_context per thread,
// its executor named rather than type-erased, and errors as values.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

namespace veer::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Every connection lives on one io_context (one per thread). Naming its executor type
// instead of any_io_executor saves a type-erased executor copy per operation.
using executor = asio::io_context::executor_type;
template <class T = void>
using task = asio::awaitable<T, executor>;
using tcp_socket = asio::basic_stream_socket<tcp, executor>;
using tcp_acceptor = asio::basic_socket_acceptor<tcp, executor>;
using timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, executor>;
// Awaited operations report errors as values: a closed peer is not exceptional here.
inline constexpr auto nothrow = asio::as_tuple(asio::use_awaitable_t<executor>{});

}  // namespace veer::proxy
