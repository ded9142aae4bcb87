// The generated firmware against real ESP-IDF, the newest tree: every variant, and the storage and slot
// layer on ESP-IDF's linux target (test/esp-idf-suite.ts says what is checked).
import { idfSuite } from './esp-idf-suite.ts';

idfSuite('newest');
