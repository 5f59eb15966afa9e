/* Placeholder until the CLI lands. */
#include <stdio.h>
int main(void)
{
	fputs("tern: not built yet\n", stderr);
	return 1;
}
