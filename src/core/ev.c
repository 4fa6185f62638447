#include "ev.h"
