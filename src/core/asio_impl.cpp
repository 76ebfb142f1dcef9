// The one translation unit that compiles Asio's and Beast's implementation (separate compilation).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
