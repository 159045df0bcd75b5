// tests/kafka/mock_serve.cpp - librdkafka's mock cluster as a process of its own, for the tests of
// the shardflow binary (a mock lives inside one process; other processes reach it over loopback).
//
//     kafka_mock_serve TOPIC:PARTITIONS...   prints "bootstraps HOST:PORT,..." on stdout, then
//                                            serves until SIGINT or SIGTERM, and exits 0
#include <csignal>
#include <cstdio>
#include <string>

#include "tests/kafka/mock_cluster.hpp"

int main(int argc, char** argv) {
  sigset_t stops;
  sigemptyset(&stops);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stops, nullptr); // before librdkafka's threads inherit the mask
  shardflow::testing::mock_kafka mock;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto colon = arg.find(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "kafka_mock_serve: %s is not TOPIC:PARTITIONS\n", argv[i]);
      return 2;
    }
    mock.create_topic(arg.substr(0, colon), std::stoi(arg.substr(colon + 1)));
  }
  std::printf("bootstraps %s\n", mock.bootstraps().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stops, &sig);
  return 0;
}
