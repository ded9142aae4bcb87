// The generated firmware against real ESP-IDF, the older trees (v5.1.7, v5.5.5): one project per chip on
// each (test/esp-idf-suite.ts says what is checked).
import { idfSuite } from './esp-idf-suite.ts';

idfSuite('older');
